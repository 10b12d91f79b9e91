// Package k8s_test renders the kustomizations under deployments/k8s with kustomize's Go API,
// decodes every object strictly with the Kubernetes API types, and checks the manifests against
// the code: the environment variables it reads, the port it listens on, the probe and metrics
// paths it serves. It is a module of its own so that the Kubernetes modules stay out of
// choreo's.
package k8s_test

import (
	"net"
	"slices"
	"strconv"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/choreo-dev/choreo/pkg/service"
	"github.com/choreo-dev/choreo/pkg/telemetry"
	"github.com/choreo-dev/choreo/services/stack"
)

// readByCode returns the environment variables the services read.
func readByCode(t *testing.T) map[string]bool {
	t.Helper()
	read := map[string]bool{}
	record := func(k string) string { read[k] = true; return "" }
	cfg := service.DefaultConfig("127.0.0.1:0")
	if err := cfg.FromEnv(record); err != nil {
		t.Fatal(err)
	}
	telemetry.Enabled(record)
	return read
}

type rendered struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	pdbs        map[string]*policyv1.PodDisruptionBudget
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
}

// render runs the kustomization in dir and decodes every object strictly: a field the
// Kubernetes types do not know fails the test.
func render(t *testing.T, dir string) rendered {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	r := rendered{map[string]*appsv1.Deployment{}, map[string]*corev1.Service{}, map[string]*policyv1.PodDisruptionBudget{},
		map[string]*corev1.ConfigMap{}, map[string]*corev1.Secret{}}
	for _, res := range m.Resources() {
		b, err := res.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		var obj interface{ GetName() string }
		switch kind := res.GetKind(); kind {
		case "Deployment":
			d := &appsv1.Deployment{}
			obj, r.deployments[res.GetName()] = d, d
		case "Service":
			s := &corev1.Service{}
			obj, r.services[res.GetName()] = s, s
		case "PodDisruptionBudget":
			p := &policyv1.PodDisruptionBudget{}
			obj, r.pdbs[res.GetName()] = p, p
		case "ConfigMap":
			c := &corev1.ConfigMap{}
			obj, r.configMaps[res.GetName()] = c, c
		case "Secret":
			s := &corev1.Secret{}
			obj, r.secrets[res.GetName()] = s, s
		default:
			t.Fatalf("%s: unexpected kind %s", dir, kind)
		}
		if err := yaml.UnmarshalStrict(b, obj); err != nil {
			t.Fatalf("%s: %s %s does not decode strictly: %v\n%s", dir, res.GetKind(), res.GetName(), err, b)
		}
	}
	return r
}

func TestKustomizations(t *testing.T) {
	read := readByCode(t)
	for _, c := range []struct {
		dir     string
		secured bool
	}{{"base", false}, {"overlays/secured", true}} {
		t.Run(c.dir, func(t *testing.T) {
			r := render(t, c.dir)
			names := stack.Services()
			if len(r.deployments) != len(names) {
				t.Errorf("deployments %v, want one per service %v", keys(r.deployments), names)
			}
			for _, name := range names {
				checkService(t, r, name, read, c.secured)
			}
		})
	}
}

func checkService(t *testing.T, r rendered, name string, read map[string]bool, secured bool) {
	d := r.deployments[name]
	if d == nil {
		t.Errorf("no Deployment %s", name)
		return
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("%s: replicas %v, want 2", name, d.Spec.Replicas)
	}
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%s: %d containers", name, len(pod.Containers))
	}
	ctr := pod.Containers[0]

	// The environment as the process sees it: the ConfigMap, then the container's own env.
	env := map[string]string{}
	for _, from := range ctr.EnvFrom {
		if from.ConfigMapRef == nil {
			t.Errorf("%s: envFrom %+v", name, from)
			continue
		}
		cm := r.configMaps[from.ConfigMapRef.Name]
		if cm == nil {
			t.Fatalf("%s: ConfigMap %s is not in the kustomization", name, from.ConfigMapRef.Name)
		}
		for k, v := range cm.Data {
			env[k] = v
		}
	}
	for _, e := range ctr.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s := r.secrets[ref.Name]
			if s == nil || s.StringData[ref.Key] == "" {
				t.Errorf("%s: %s from Secret %s key %s, which the kustomization does not hold", name, e.Name, ref.Name, ref.Key)
				continue
			}
			env[e.Name] = s.StringData[ref.Key]
		default:
			t.Errorf("%s: %s from %+v", name, e.Name, e.ValueFrom)
		}
	}
	for k := range env {
		if !read[k] {
			t.Errorf("%s: the manifests set %s, which the code does not read", name, k)
		}
	}
	for _, k := range []string{"KAFKA_BROKERS", "SCHEMA_REGISTRY_URL", "DATABASE_URL", "HTTP_ADDR", "DATA_DIR"} {
		if env[k] == "" {
			t.Errorf("%s: %s not set", name, k)
		}
	}
	if secured && env["KAFKA_SASL_USERNAME"] != name {
		t.Errorf("%s: KAFKA_SASL_USERNAME %q, want its own principal", name, env["KAFKA_SASL_USERNAME"])
	}
	// The values are ones the code accepts.
	cfg := service.DefaultConfig("")
	if err := cfg.FromEnv(func(k string) string { return env[k] }); err != nil {
		t.Errorf("%s: %v", name, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("%s: the configuration does not validate: %v", name, err)
	}

	// The port the code listens on is the container's, and the probes and metrics are the
	// paths it serves.
	_, portStr, err := net.SplitHostPort(env["HTTP_ADDR"])
	if err != nil {
		t.Fatalf("%s: HTTP_ADDR %q: %v", name, env["HTTP_ADDR"], err)
	}
	port, _ := strconv.Atoi(portStr)
	if len(ctr.Ports) != 1 || ctr.Ports[0].Name != "http" || int(ctr.Ports[0].ContainerPort) != port {
		t.Errorf("%s: container ports %+v, want http on %d (HTTP_ADDR)", name, ctr.Ports, port)
	}
	for _, p := range []struct {
		probe *corev1.Probe
		kind  string
		path  string
	}{{ctr.LivenessProbe, "liveness", service.LivenessPath}, {ctr.ReadinessProbe, "readiness", service.ReadinessPath}, {ctr.StartupProbe, "startup", service.LivenessPath}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: no %s probe", name, p.kind)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "http" {
			t.Errorf("%s: %s probe GET %s on %s, want %s on http", name, p.kind, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path)
		}
	}
	ann := d.Spec.Template.Annotations
	if ann["prometheus.io/path"] != service.MetricsPath || ann["prometheus.io/port"] != portStr {
		t.Errorf("%s: scrape annotations %v, want %s on %s", name, ann, service.MetricsPath, portStr)
	}
	req, lim := ctr.Resources.Requests.Memory(), ctr.Resources.Limits.Memory()
	if req.IsZero() || lim.IsZero() || lim.Cmp(*req) < 0 || ctr.Resources.Requests.Cpu().IsZero() {
		t.Errorf("%s: resources %+v: want memory request <= limit and a CPU request", name, ctr.Resources)
	}
	mounted := false
	for _, m := range ctr.VolumeMounts {
		mounted = mounted || m.MountPath == env["DATA_DIR"]
		if !slices.ContainsFunc(pod.Volumes, func(v corev1.Volume) bool {
			return v.Name == m.Name && (v.Secret == nil || r.secrets[v.Secret.SecretName] != nil)
		}) {
			t.Errorf("%s: mount %s of a volume (or Secret) that does not exist", name, m.Name)
		}
	}
	if !mounted {
		t.Errorf("%s: DATA_DIR %s is not a mounted volume (the root filesystem is read-only)", name, env["DATA_DIR"])
	}

	// A Service on the named port, and a disruption budget over the same pods.
	sel := d.Spec.Selector.MatchLabels
	if s := r.services[name]; s == nil || !equal(s.Spec.Selector, sel) || len(s.Spec.Ports) != 1 || s.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("%s: Service %+v, want one selecting %v on port http", name, s, sel)
	}
	if p := r.pdbs[name]; p == nil || !equal(p.Spec.Selector.MatchLabels, sel) || p.Spec.MaxUnavailable == nil {
		t.Errorf("%s: PodDisruptionBudget %+v, want one over %v", name, p, sel)
	}
	for k, v := range sel {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("%s: the selector %v does not match the pod labels %v", name, sel, d.Spec.Template.Labels)
		}
	}
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

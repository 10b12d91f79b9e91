package compose_test

import (
	"bufio"
	"context"
	"encoding/xml"
	"go/version"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/choreo-dev/choreo/pkg/service"
	"github.com/choreo-dev/choreo/services/account/accountsvc"
	"github.com/choreo-dev/choreo/services/notification/notificationsvc"
	"github.com/choreo-dev/choreo/services/user/usersvc"
)

// root is the repository root, seen from this package's directory (where go test runs).
const root = "../.."

// The infrastructure services, by their name in docker-compose.yml.
const (
	kafkaService    = "kafka"
	registryService = "schema-registry"
	mailService     = "mailpit"
)

// choreoService is one of the platform's services as the code defines it.
type choreoService struct {
	name            string   // the Name constant: the compose service must carry it
	dir             string   // services/<dir>, the Dockerfile's SERVICE build argument
	defaultHTTPAddr string   // the DefaultHTTPAddr constant: the compose stack publishes it
	needs           []string // the services it must wait for, healthy
}

var choreoServices = []choreoService{
	{accountsvc.Name, "account", accountsvc.DefaultHTTPAddr, []string{kafkaService, registryService}},
	{usersvc.Name, "user", usersvc.DefaultHTTPAddr, []string{kafkaService, registryService}},
	{notificationsvc.Name, "notification", notificationsvc.DefaultHTTPAddr, []string{kafkaService, registryService, mailService}},
}

// loadProject loads docker-compose.yml once, the way `docker compose` does (interpolation,
// normalization, consistency checks, every profile active) but with no variables from the
// test's environment: CI sets KAFKA_BROKERS for other tests, and the file must be checked as
// a user without any variable set gets it.
var loadProject = sync.OnceValues(func() (*types.Project, error) {
	wd, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(wd, "docker-compose.yml")},
		cli.WithWorkingDirectory(wd),
		cli.WithInterpolation(true),
		cli.WithProfiles([]string{"*"}),
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
})

func project(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadProject()
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	return p
}

func composeService(t *testing.T, name string) types.ServiceConfig {
	t.Helper()
	s, ok := project(t).Services[name]
	if !ok {
		t.Fatalf("docker-compose.yml has no service %q (it has %v)", name, sortedKeys(project(t).Services))
	}
	return s
}

// env returns the value of name in s's environment, and whether it is set to a value.
func env(s types.ServiceConfig, name string) (string, bool) {
	v, ok := s.Environment[name]
	if !ok || v == nil {
		return "", false
	}
	return *v, true
}

func mustEnv(t *testing.T, s types.ServiceConfig, name string) string {
	t.Helper()
	v, ok := env(s, name)
	if !ok || v == "" {
		t.Fatalf("%s: environment %s is not set", s.Name, name)
	}
	return v
}

func TestProjectName(t *testing.T) {
	t.Parallel()
	// Named volumes are <project>_<volume>: a fixed name keeps them whatever the checkout's
	// directory is called.
	if got := project(t).Name; got != "choreo" {
		t.Errorf("project name is %q, want choreo (top-level name: in docker-compose.yml)", got)
	}
}

func TestServicesPresent(t *testing.T) {
	t.Parallel()
	want := []string{kafkaService, registryService, mailService}
	for _, s := range choreoServices {
		want = append(want, s.name)
	}
	for _, name := range want {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := composeService(t, name)
			if len(s.Profiles) > 0 {
				t.Errorf("%s is in profiles %v: `docker compose up` would not start it", name, s.Profiles)
			}
		})
	}
}

func TestImagesPinned(t *testing.T) {
	t.Parallel()
	for name, s := range project(t).Services {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if s.Build != nil {
				return // built from the Dockerfile, whose FROM lines TestDockerfile checks
			}
			if err := pinned(s.Image); err != "" {
				t.Errorf("image %q: %s", s.Image, err)
			}
		})
	}
}

// pinned returns why ref is not pinned to one version, or "" when it is.
func pinned(ref string) string {
	if ref == "" {
		return "no image and no build section"
	}
	if strings.Contains(ref, "$") {
		return "the reference uses a variable"
	}
	if _, digest, ok := strings.Cut(ref, "@"); ok && digest != "" {
		return ""
	}
	name := ref[strings.LastIndex(ref, "/")+1:]
	_, tag, ok := strings.Cut(name, ":")
	switch {
	case !ok || tag == "":
		return "no tag: it means latest; pin a version"
	case tag == "latest":
		return "tag latest; pin a version"
	}
	return ""
}

// imageTag is the tag of ref ("" without one).
func imageTag(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	_, tag, _ := strings.Cut(ref[strings.LastIndex(ref, "/")+1:], ":")
	return tag
}

// dockerfile is what the tests need of the Dockerfile.
type dockerfile struct {
	syntax string            // the # syntax= directive, if any
	args   map[string]string // the ARGs before the first FROM, with their defaults
	froms  []string          // the image of every FROM line, in order, ${ARG}s replaced by their defaults
	stages []string          // the stage names (AS ...)
	text   string
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := dockerfile{text: string(b), args: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(df.text))
	directives := true // parser directives come first, before any other line
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if directives {
			if k, v, ok := strings.Cut(strings.TrimPrefix(line, "#"), "="); strings.HasPrefix(line, "#") && ok &&
				strings.EqualFold(strings.TrimSpace(k), "syntax") {
				df.syntax = strings.TrimSpace(v)
				continue
			}
			directives = false
		}
		f := strings.Fields(line)
		if len(f) == 2 && strings.EqualFold(f[0], "ARG") && len(df.froms) == 0 {
			// A global ARG: FROM lines may use it; the user who sets nothing gets its default.
			name, def, _ := strings.Cut(f[1], "=")
			df.args[name] = def
			continue
		}
		if len(f) < 2 || !strings.EqualFold(f[0], "FROM") {
			continue
		}
		for i := range f {
			f[i] = os.Expand(f[i], func(name string) string {
				if v, ok := df.args[name]; ok {
					return v
				}
				return "${" + name + "}" // not a global ARG: left for pinned to refuse
			})
		}
		f = f[1:]
		for len(f) > 0 && strings.HasPrefix(f[0], "--") {
			f = f[1:] // --platform=...
		}
		if len(f) == 0 {
			t.Fatalf("Dockerfile: FROM without an image: %q", line)
		}
		df.froms = append(df.froms, f[0])
		if len(f) == 3 && strings.EqualFold(f[1], "AS") {
			df.stages = append(df.stages, strings.ToLower(f[2]))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(df.froms) == 0 {
		t.Fatal("Dockerfile has no FROM line")
	}
	return df
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	df := readDockerfile(t)
	t.Run("pinned", func(t *testing.T) {
		t.Parallel()
		if df.syntax != "" {
			if err := pinned(df.syntax); err != "" {
				t.Errorf("# syntax=%s: %s", df.syntax, err)
			}
		}
		for _, from := range df.froms {
			if slices.Contains(df.stages, strings.ToLower(from)) {
				continue // an earlier stage
			}
			if err := pinned(from); err != "" {
				t.Errorf("FROM %s: %s", from, err)
			}
		}
	})
	t.Run("go version", func(t *testing.T) {
		t.Parallel()
		// The golang image sets GOTOOLCHAIN=local: its Go must satisfy go.mod by itself.
		want := goModVersion(t)
		var found bool
		for _, from := range df.froms {
			if !strings.HasPrefix(from, "golang:") && !strings.Contains(from, "/golang:") {
				continue
			}
			found = true
			v, _, _ := strings.Cut(imageTag(from), "-")
			if version.Compare("go"+v, "go"+want) < 0 {
				t.Errorf("FROM %s: Go %s is older than go.mod's go %s (the image will not fetch a newer toolchain); pin golang:%s or later",
					from, v, want, want)
			}
		}
		if !found {
			t.Errorf("no FROM golang:... builder in the Dockerfile (FROM lines: %v)", df.froms)
		}
	})
}

func goModVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("go.mod has no go line")
	return ""
}

func TestBuilds(t *testing.T) {
	t.Parallel()
	df := readDockerfile(t)
	wd, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range project(t).Services {
		if s.Build == nil {
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := filepath.Clean(s.Build.Context); got != wd {
				t.Errorf("build context is %s, want the repository root %s", got, wd)
			}
			if got := s.Build.Dockerfile; got != "" && got != "Dockerfile" {
				t.Errorf("build dockerfile is %q, want the repository's Dockerfile", got)
			}
			arg := s.Build.Args["SERVICE"]
			if arg == nil || *arg == "" {
				t.Fatal("build argument SERVICE is not set: the image would hold the default binary")
			}
			pkg := "./services/" + *arg
			if *arg == "choreo" {
				pkg = "./cmd/choreo"
			}
			if _, err := os.Stat(filepath.Join(root, pkg, "main.go")); err != nil {
				t.Errorf("SERVICE=%s: no command at %s: %v", *arg, pkg, err)
			}
			if !strings.Contains(df.text, " "+pkg+" ") && !strings.Contains(df.text, " "+pkg+"\n") {
				t.Errorf("SERVICE=%s: the Dockerfile's go build does not build %s", *arg, pkg)
			}
		})
	}
	for _, cs := range choreoServices {
		t.Run(cs.name+"/SERVICE", func(t *testing.T) {
			t.Parallel()
			s := composeService(t, cs.name)
			if s.Build == nil {
				t.Fatalf("%s has no build section: it must be built from the Dockerfile", cs.name)
			}
			if arg := s.Build.Args["SERVICE"]; arg == nil || *arg != cs.dir {
				t.Errorf("%s: build argument SERVICE is %v, want %q (services/%s holds %s)", cs.name, deref(arg), cs.dir, cs.dir, cs.name)
			}
		})
	}
}

func TestKafkaVersion(t *testing.T) {
	t.Parallel()
	want := pomKafkaVersion(t)
	image := composeService(t, kafkaService).Image
	if !strings.HasPrefix(image, "apache/kafka:") {
		t.Errorf("kafka image is %q, want apache/kafka:%s", image, want)
	}
	if got := imageTag(image); got != want {
		t.Errorf("kafka image tag is %q; deployments/kafka/pom.xml pins Kafka %s: use the same version", got, want)
	}
}

// pomKafkaVersion is the version of org.apache.kafka:kafka_2.13 in deployments/kafka/pom.xml.
func pomKafkaVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "deployments", "kafka", "pom.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var pom struct {
		KafkaVersion string `xml:"properties>kafka.version"`
		Dependencies []struct {
			GroupID    string `xml:"groupId"`
			ArtifactID string `xml:"artifactId"`
			Version    string `xml:"version"`
		} `xml:"dependencies>dependency"`
	}
	if err := xml.Unmarshal(b, &pom); err != nil {
		t.Fatalf("deployments/kafka/pom.xml: %v", err)
	}
	for _, d := range pom.Dependencies {
		if d.GroupID != "org.apache.kafka" || d.ArtifactID != "kafka_2.13" {
			continue
		}
		v := strings.TrimSpace(d.Version)
		if v == "${kafka.version}" {
			v = strings.TrimSpace(pom.KafkaVersion)
		}
		if v == "" || strings.Contains(v, "$") {
			t.Fatalf("deployments/kafka/pom.xml: cannot resolve the version of kafka_2.13 (%q)", d.Version)
		}
		return v
	}
	t.Fatal("deployments/kafka/pom.xml has no org.apache.kafka:kafka_2.13 dependency")
	return ""
}

// configEnv is every variable service.Config.FromEnv reads.
func configEnv(t *testing.T) []string {
	t.Helper()
	var names []string
	cfg := service.DefaultConfig("")
	err := cfg.FromEnv(func(name string) string {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
		return ""
	})
	if err != nil {
		t.Fatalf("FromEnv with an empty environment: %v", err)
	}
	slices.Sort(names)
	return names
}

func TestServiceEnvironment(t *testing.T) {
	t.Parallel()
	known := configEnv(t)
	required := []string{"KAFKA_BROKERS", "SCHEMA_REGISTRY_URL", "HTTP_ADDR", "DATA_DIR"}
	for _, name := range required {
		if !slices.Contains(known, name) {
			t.Fatalf("service.Config.FromEnv no longer reads %s: update this test", name)
		}
	}
	for _, cs := range choreoServices {
		t.Run(cs.name, func(t *testing.T) {
			t.Parallel()
			s := composeService(t, cs.name)
			for _, name := range sortedKeys(s.Environment) {
				if !slices.Contains(known, name) {
					t.Errorf("environment %s is not read by the service, which would ignore it silently (a typo?); it reads %v",
						name, known)
				}
			}
			for _, name := range required {
				if v, ok := env(s, name); !ok || v == "" {
					t.Errorf("environment %s is not set: the service would use its loopback default, unreachable in a container", name)
				}
			}
			// The same validation the service runs at start.
			cfg := service.DefaultConfig(cs.defaultHTTPAddr)
			if err := cfg.FromEnv(func(name string) string { v, _ := env(s, name); return v }); err != nil {
				t.Fatalf("the service would refuse its environment: %v", err)
			}
			if err := cfg.Validate(); err != nil {
				t.Errorf("the service would refuse its environment: %v", err)
			}
		})
	}
}

func TestServicePorts(t *testing.T) {
	t.Parallel()
	for _, cs := range choreoServices {
		t.Run(cs.name, func(t *testing.T) {
			t.Parallel()
			s := composeService(t, cs.name)
			host, port := splitHostPort(t, "HTTP_ADDR", mustEnv(t, s, "HTTP_ADDR"))
			if host != "" && host != "0.0.0.0" && host != "::" {
				t.Errorf("HTTP_ADDR listens on %s: only the container itself could reach it; use 0.0.0.0:%s", host, port)
			}
			wantHost, wantPort := splitHostPort(t, "DefaultHTTPAddr", cs.defaultHTTPAddr)
			p, ok := portByTarget(s, port)
			if !ok {
				t.Fatalf("HTTP_ADDR port %s is not published (ports: %v); want \"%s:%s:%s\"", port, portsString(s), wantHost, wantPort, port)
			}
			if p.Published != wantPort {
				t.Errorf("container port %s is published on host port %q; want %s, the service's default (%s) that `make run` uses too",
					port, p.Published, wantPort, cs.defaultHTTPAddr)
			}
			if p.HostIP != wantHost {
				t.Errorf("container port %s is published on host address %q; want %s, as the service's default (%s)",
					port, p.HostIP, wantHost, cs.defaultHTTPAddr)
			}
		})
	}
}

func TestDataVolumes(t *testing.T) {
	t.Parallel()
	volumes := project(t).Volumes
	for _, cs := range choreoServices {
		t.Run(cs.name, func(t *testing.T) {
			t.Parallel()
			s := composeService(t, cs.name)
			dir := mustEnv(t, s, "DATA_DIR")
			i := slices.IndexFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == dir })
			if i < 0 {
				t.Fatalf("DATA_DIR %s is not a mounted volume: the service's database would die with its container", dir)
			}
			v := s.Volumes[i]
			if v.Type != types.VolumeTypeVolume {
				t.Errorf("DATA_DIR %s is a %s mount; want a named volume (the image's /data belongs to its non-root user)", dir, v.Type)
			}
			if _, ok := volumes[v.Source]; !ok {
				t.Errorf("volume %q is not declared under the top-level volumes:", v.Source)
			}
			for _, other := range choreoServices {
				if other.name == cs.name {
					continue
				}
				for _, ov := range composeService(t, other.name).Volumes {
					if ov.Source == v.Source {
						t.Errorf("volume %q is shared with %s: each service owns its database", v.Source, other.name)
					}
				}
			}
		})
	}
}

// listeners parses a Kafka listener list (NAME://host:port,...) into name -> host:port.
func listeners(t *testing.T, setting, list string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for l := range strings.SplitSeq(list, ",") {
		name, addr, ok := strings.Cut(strings.TrimSpace(l), "://")
		if !ok {
			t.Fatalf("kafka %s: %q is not NAME://host:port", setting, l)
		}
		out[name] = addr
	}
	return out
}

func TestKafkaListeners(t *testing.T) {
	t.Parallel()
	kafka := composeService(t, kafkaService)
	bound := listeners(t, "KAFKA_LISTENERS", mustEnv(t, kafka, "KAFKA_LISTENERS"))
	advertised := listeners(t, "KAFKA_ADVERTISED_LISTENERS", mustEnv(t, kafka, "KAFKA_ADVERTISED_LISTENERS"))

	// reachable checks that a client inside the network that bootstraps from addr stays there:
	// addr is the kafka service and an advertised listener bound on the same port.
	reachable := func(t *testing.T, addr string) {
		t.Helper()
		host, port := splitHostPort(t, "broker", addr)
		if host != kafkaService && (kafka.Hostname == "" || host != kafka.Hostname) {
			t.Errorf("broker %s: host %s is not the kafka service (%s:<port>)", addr, host, kafkaService)
			return
		}
		for name, adv := range advertised {
			if adv != addr {
				continue
			}
			b, ok := bound[name]
			if !ok {
				t.Errorf("broker %s: listener %s is advertised but not in KAFKA_LISTENERS", addr, name)
			} else if _, bport := splitHostPort(t, "KAFKA_LISTENERS "+name, b); bport != port {
				t.Errorf("broker %s: listener %s is advertised on port %s but bound on %s", addr, name, port, bport)
			}
			return
		}
		t.Errorf("broker %s is not an advertised listener of kafka (KAFKA_ADVERTISED_LISTENERS %v): the client would bootstrap, then be sent elsewhere",
			addr, advertised)
	}

	for name, s := range project(t).Services {
		if v, ok := env(s, "KAFKA_BROKERS"); ok {
			t.Run(name+"/KAFKA_BROKERS", func(t *testing.T) {
				t.Parallel()
				for b := range strings.SplitSeq(v, ",") {
					reachable(t, strings.TrimSpace(b))
				}
			})
		}
	}
	t.Run(registryService+"/KAFKASTORE", func(t *testing.T) {
		t.Parallel()
		v := mustEnv(t, composeService(t, registryService), "SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS")
		for b := range strings.SplitSeq(v, ",") {
			_, addr, ok := strings.Cut(strings.TrimSpace(b), "://")
			if !ok {
				addr = strings.TrimSpace(b)
			}
			reachable(t, addr)
		}
	})
	t.Run("host", func(t *testing.T) {
		t.Parallel()
		// kcat -b localhost:9092 and `choreo dev -brokers` from the host: the default broker
		// of every choreo command must be an advertised listener published on that port.
		def := service.DefaultConfig("").Brokers[0]
		_, defPort := splitHostPort(t, "default broker", def)
		for name, adv := range advertised {
			host, port := splitHostPort(t, "KAFKA_ADVERTISED_LISTENERS "+name, adv)
			if host != "localhost" && host != "127.0.0.1" {
				continue
			}
			if port != defPort {
				t.Errorf("listener %s advertises %s; the code's default broker is %s: use port %s", name, adv, def, defPort)
			}
			b, ok := bound[name]
			if !ok {
				t.Fatalf("listener %s is advertised but not in KAFKA_LISTENERS", name)
			}
			bhost, bport := splitHostPort(t, "KAFKA_LISTENERS "+name, b)
			if bhost != "" && bhost != "0.0.0.0" && bhost != "::" {
				t.Errorf("listener %s binds %s inside the container: the published port could not reach it", name, b)
			}
			if p, ok := portByTarget(kafka, bport); !ok {
				t.Errorf("listener %s (container port %s) is not published (ports: %v)", name, bport, portsString(kafka))
			} else if p.Published != port {
				t.Errorf("listener %s advertises port %s but container port %s is published on %q: clients would be sent to a closed port",
					name, port, bport, p.Published)
			}
			return
		}
		t.Errorf("kafka advertises no listener for the host (localhost:%s): KAFKA_ADVERTISED_LISTENERS %v", defPort, advertised)
	})
}

func TestSchemaRegistryURL(t *testing.T) {
	t.Parallel()
	reg := composeService(t, registryService)
	lu, err := url.Parse(mustEnv(t, reg, "SCHEMA_REGISTRY_LISTENERS"))
	if err != nil {
		t.Fatalf("SCHEMA_REGISTRY_LISTENERS: %v", err)
	}
	for name, s := range project(t).Services {
		v, ok := env(s, "SCHEMA_REGISTRY_URL")
		if !ok {
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			u, err := url.Parse(v)
			if err != nil {
				t.Fatalf("SCHEMA_REGISTRY_URL %q: %v", v, err)
			}
			if u.Hostname() != registryService {
				t.Errorf("SCHEMA_REGISTRY_URL %s: host %s is not the %s service", v, u.Hostname(), registryService)
			}
			if u.Scheme != lu.Scheme || u.Port() != lu.Port() {
				t.Errorf("SCHEMA_REGISTRY_URL %s does not match the registry's listener %s", v, lu)
			}
		})
	}
	t.Run("host", func(t *testing.T) {
		t.Parallel()
		def, err := url.Parse(service.DefaultConfig("").RegistryURL)
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := portByTarget(reg, lu.Port()); !ok {
			t.Errorf("the registry's port %s is not published (ports: %v)", lu.Port(), portsString(reg))
		} else if p.Published != def.Port() {
			t.Errorf("the registry is published on host port %q; the code's default registry is %s: use %s", p.Published, def, def.Port())
		}
	})
}

func TestSMTP(t *testing.T) {
	t.Parallel()
	s := composeService(t, notificationsvc.Name)
	host, port := splitHostPort(t, "SMTP_ADDR", mustEnv(t, s, "SMTP_ADDR"))
	if host != mailService {
		t.Errorf("SMTP_ADDR host is %s, want the %s service", host, mailService)
	}
	mail := composeService(t, mailService)
	bind, ok := env(mail, "MP_SMTP_BIND_ADDR")
	if !ok {
		bind = "0.0.0.0:1025" // Mailpit's default
	}
	if _, want := splitHostPort(t, "MP_SMTP_BIND_ADDR", bind); port != want {
		t.Errorf("SMTP_ADDR port is %s; Mailpit's SMTP server listens on %s", port, want)
	}
}

func TestDependencies(t *testing.T) {
	t.Parallel()
	for _, cs := range choreoServices {
		t.Run(cs.name, func(t *testing.T) {
			t.Parallel()
			s := composeService(t, cs.name)
			for _, need := range cs.needs {
				d, ok := s.DependsOn[need]
				if !ok {
					t.Errorf("does not depend on %s: it would start before it and fail", need)
					continue
				}
				if d.Condition != types.ServiceConditionHealthy {
					t.Errorf("depends on %s with condition %q, want %s: a started container is not a ready one",
						need, d.Condition, types.ServiceConditionHealthy)
				}
			}
			if s.Restart != types.RestartPolicyUnlessStopped {
				t.Errorf("restart is %q, want %s", s.Restart, types.RestartPolicyUnlessStopped)
			}
		})
	}
	// Every service_healthy condition must name a service that has a healthcheck, or
	// `docker compose up` waits for it forever.
	for name, s := range project(t).Services {
		for dep, d := range s.DependsOn {
			if d.Condition != types.ServiceConditionHealthy {
				continue
			}
			t.Run(name+"/"+dep, func(t *testing.T) {
				t.Parallel()
				hc := composeService(t, dep).HealthCheck
				switch {
				case hc == nil:
					t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
				case hc.Disable || len(hc.Test) == 0 || hc.Test[0] == "NONE":
					t.Errorf("%s waits for %s to be healthy, but its healthcheck is disabled", name, dep)
				}
			})
		}
	}
}

func splitHostPort(t *testing.T, what, addr string) (host, port string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		t.Fatalf("%s %q is not host:port: %v", what, addr, err)
	}
	return host, port
}

// portByTarget is s's published port for container port target.
func portByTarget(s types.ServiceConfig, target string) (types.ServicePortConfig, bool) {
	for _, p := range s.Ports {
		if p.Published != "" && portString(p.Target) == target {
			return p, true
		}
	}
	return types.ServicePortConfig{}, false
}

func portString(p uint32) string { return strconv.FormatUint(uint64(p), 10) }

func portsString(s types.ServiceConfig) []string {
	var out []string
	for _, p := range s.Ports {
		out = append(out, p.HostIP+":"+p.Published+"->"+portString(p.Target)+"/"+p.Protocol)
	}
	return out
}

func deref(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestDatabases: each service has a PostgreSQL database of its own on the postgres service, one
// that the init script creates, and waits for the server to be healthy.
func TestDatabases(t *testing.T) {
	t.Parallel()
	initSQL, err := os.ReadFile("postgres/init.sql")
	if err != nil {
		t.Fatal(err)
	}
	pg := composeService(t, "postgres")
	if pg.HealthCheck == nil {
		t.Error("postgres has no health check")
	}
	seen := map[string]string{}
	for _, name := range []string{accountsvc.Name, usersvc.Name, notificationsvc.Name} {
		svc := composeService(t, name)
		u, err := url.Parse(mustEnv(t, svc, "DATABASE_URL"))
		if err != nil || u.Scheme != "postgres" || u.Hostname() != "postgres" {
			t.Errorf("%s: DATABASE_URL %v does not point at the postgres service", name, u)
			continue
		}
		db := strings.TrimPrefix(u.Path, "/")
		if other, dup := seen[db]; dup {
			t.Errorf("%s and %s share database %s; each service owns its own", name, other, db)
		}
		seen[db] = name
		if !strings.Contains(string(initSQL), "CREATE DATABASE "+db+";") {
			t.Errorf("%s: database %s is not created by deployments/compose/postgres/init.sql", name, db)
		}
		if dep, ok := svc.DependsOn["postgres"]; !ok || dep.Condition != "service_healthy" {
			t.Errorf("%s does not wait for postgres to be healthy", name)
		}
	}
}

// TestBuildArgs: the base images compose passes to the Dockerfile are, by default, the
// Dockerfile's own defaults (what a plain `docker build` uses), and every build argument compose
// passes is one the Dockerfile declares.
func TestBuildArgs(t *testing.T) {
	t.Parallel()
	df := readDockerfile(t)
	for name, s := range project(t).Services {
		if s.Build == nil {
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for arg, v := range s.Build.Args {
				if arg == "SERVICE" {
					continue
				}
				def, ok := df.args[arg]
				if !ok {
					t.Errorf("build argument %s is not a global ARG of the Dockerfile (it has %v)", arg, sortedKeys(df.args))
					continue
				}
				if v == nil || *v != def {
					t.Errorf("build argument %s defaults to %v; the Dockerfile's default is %q: keep them equal", arg, deref(v), def)
				}
			}
		})
	}
}

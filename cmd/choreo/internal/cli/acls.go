package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/acl"
	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/pkg/kafka"
	"github.com/choreo-dev/choreo/schemas"
)

const aclsUsage = `choreo acls plan  [-namespace ns] [-idempotent-write] [-format text|json]
  choreo acls apply [-namespace ns] [-idempotent-write] [-passwords-dir dir] [-topics=false] [-partitions n] [-replication-factor n] [connection flags]
  choreo acls check [-namespace ns] [-idempotent-write] [connection flags]`

// runACLs derives each service's Kafka ACLs from the catalog: plan prints them, apply creates
// the topics, the SCRAM users and the ACLs (as an administrator), check fails on drift.
func runACLs(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintf(env.Stderr, "usage:\n  %s\n", aclsUsage)
		if len(args) == 0 {
			return fmt.Errorf("%w: want plan, apply or check", errUsage)
		}
		return flag.ErrHelp
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("acls "+sub, flag.ContinueOnError)
	ns := fs.String("namespace", env.Getenv("CHOREO_NAMESPACE"), "prefix of topics, consumer groups and user names (env CHOREO_NAMESPACE)")
	idem := fs.Bool("idempotent-write", false, "also grant IDEMPOTENT_WRITE on the cluster to producers (brokers before Kafka 3.0 need it)")
	var (
		cn                     *conn
		format, passwordsDir   *string
		topics                 *bool
		partitions, replFactor *int
	)
	switch sub {
	case "plan":
		format = fs.String("format", "text", "output: text or json")
	case "apply", "check":
		cn = connFlags(fs, env)
		if sub == "apply" {
			passwordsDir = fs.String("passwords-dir", "", "create or update each principal's SCRAM-SHA-512 user with the password in <dir>/<user>.password, generating the files that are missing; empty: leave users alone")
			topics = fs.Bool("topics", true, "create the topics the services use (services may not create topics themselves)")
			partitions = fs.Int("partitions", 6, "partitions of created topics (env TOPIC_PARTITIONS)")
			replFactor = fs.Int("replication-factor", 1, "replication factor of created topics, -1 for the broker default (env TOPIC_REPLICATION_FACTOR)")
		}
	default:
		return fmt.Errorf("%w: unknown subcommand %q: want plan, apply or check\n  %s", errUsage, sub, aclsUsage)
	}
	if err := parse(fs, env, args, 0); err != nil {
		return err
	}
	cat, err := catalog.Load(schemas.FS)
	if err != nil {
		return err
	}
	plan, err := acl.Derive(cat, acl.Namespace(*ns), acl.IdempotentWrite(*idem))
	if err != nil {
		return err
	}
	if sub == "plan" {
		switch *format {
		case "text":
			return printPlan(env.Stdout, plan)
		case "json":
			enc := json.NewEncoder(env.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(planJSON(plan))
		}
		return fmt.Errorf("%w: -format %q: want text or json", errUsage, *format)
	}

	opts, err := cn.kafkaOpts(kgo.MetadataMinAge(50 * time.Millisecond))
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("KAFKA_BROKERS %s: %w", cn.brokers, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if sub == "check" {
		d, err := acl.Check(ctx, adm, plan)
		if err != nil {
			return cn.explain(err)
		}
		return printDrift(env.Stdout, plan, d)
	}

	if *partitions < 1 || *partitions > math.MaxInt32 || *replFactor == 0 || *replFactor < -1 || *replFactor > math.MaxInt16 {
		return fmt.Errorf("%w: -partitions %d / -replication-factor %d out of range", errUsage, *partitions, *replFactor)
	}
	if *topics {
		rep, err := kafka.EnsureTopics(ctx, adm, planTopics(plan, int32(*partitions), int16(*replFactor))...)
		for _, c := range rep.Capped {
			fmt.Fprintf(env.Stderr, "note: %s\n", c)
		}
		for _, w := range rep.Warnings {
			fmt.Fprintf(env.Stderr, "warning: %s\n", w)
		}
		if err != nil {
			return fmt.Errorf("create topics: %w", cn.explain(err))
		}
		fmt.Fprintf(env.Stdout, "topics: %s\n", strings.Join(plan.Topics(), ", "))
	}
	if *passwordsDir != "" {
		pws, err := passwords(*passwordsDir, plan.Users())
		if err != nil {
			return err
		}
		if err := acl.UpsertUsers(ctx, adm, pws); err != nil {
			return cn.explain(err)
		}
		fmt.Fprintf(env.Stdout, "SCRAM-SHA-512 users: %s (passwords in %s)\n", strings.Join(plan.Users(), ", "), *passwordsDir)
	}
	if err := acl.Apply(ctx, adm, plan); err != nil {
		return cn.explain(err)
	}
	fmt.Fprintf(env.Stdout, "ACLs: %d for %d principals\n", len(plan.Grants()), len(plan.Principals))
	return nil
}

// planTopics returns the plan's topics to provision: the replays topics are compacted and have
// one partition, as package dlq creates them.
func planTopics(plan acl.Plan, partitions int32, rf int16) []kafka.Topic {
	var out []kafka.Topic
	for _, t := range plan.Topics() {
		if strings.HasSuffix(t, ".dlq.replays") {
			compact := "compact"
			out = append(out, kafka.Topic{Name: t, Partitions: 1, ReplicationFactor: rf, Configs: map[string]*string{"cleanup.policy": &compact}})
			continue
		}
		out = append(out, kafka.Topic{Name: t, Partitions: partitions, ReplicationFactor: rf})
	}
	return out
}

// passwords reads <dir>/<user>.password for every user, generating the missing files.
func passwords(dir string, users []string) (map[string]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("-passwords-dir: %w", err)
	}
	out := make(map[string]string, len(users))
	for _, u := range users {
		p := filepath.Join(dir, u+".password")
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			raw := make([]byte, 18)
			if _, err := rand.Read(raw); err != nil {
				return nil, err
			}
			b = []byte(base64.RawURLEncoding.EncodeToString(raw))
			err = os.WriteFile(p, b, 0o600)
		}
		if err != nil {
			return nil, fmt.Errorf("-passwords-dir: %w", err)
		}
		pw := strings.TrimRight(string(b), "\r\n")
		if pw == "" {
			return nil, fmt.Errorf("-passwords-dir: %s is empty", p)
		}
		out[u] = pw
	}
	return out, nil
}

func printPlan(w io.Writer, plan acl.Plan) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i, p := range plan.Principals {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		fmt.Fprintf(tw, "User:%s\n", p.User)
		for _, g := range p.Grants {
			fmt.Fprintf(tw, "  ALLOW %s\t%s:%s\t%s\n", g.Operation, strings.ToLower(g.Resource.String()), g.Name, g.Why)
		}
	}
	return tw.Flush()
}

type grantJSON struct {
	Principal string `json:"principal"`
	Operation string `json:"operation"`
	Resource  string `json:"resourceType"`
	Name      string `json:"name"`
	Why       string `json:"why"`
}

func planJSON(plan acl.Plan) []grantJSON {
	var out []grantJSON
	for _, g := range plan.Grants() {
		out = append(out, grantJSON{g.Principal, g.Operation.String(), strings.ToLower(g.Resource.String()), g.Name, g.Why})
	}
	return out
}

// errDrift is returned by acls check when the cluster does not match the catalog.
var errDrift = errors.New("the cluster's ACLs differ from the catalog's")

func printDrift(w io.Writer, plan acl.Plan, d acl.Drift) error {
	if d.Empty() {
		fmt.Fprintf(w, "ACLs match the catalog: %d grants for %d principals, no extra ACLs\n", len(plan.Grants()), len(plan.Principals))
		return nil
	}
	for _, g := range d.Missing {
		fmt.Fprintf(w, "missing: ALLOW %s (%s)\n", g, g.Why)
	}
	for _, a := range d.Extra {
		fmt.Fprintf(w, "extra:   %s\n", acl.Describe(a))
	}
	for _, u := range d.MissingUsers {
		fmt.Fprintf(w, "missing: SCRAM user %s\n", u)
	}
	return fmt.Errorf("%w: %d missing, %d extra, %d users missing (choreo acls apply adds what is missing; remove extras with kafka-acls --remove)",
		errDrift, len(d.Missing), len(d.Extra), len(d.MissingUsers))
}

package catalog_test

import (
	"bytes"
	"errors"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/schemas"
)

var update = flag.Bool("update", false, "rewrite testdata/CATALOG.golden.md from schemas/catalog.yaml")

// validYAML is a small catalog that passes every check; the failure cases each break one rule.
const validYAML = `events:
  - name: OrderPlaced
    topic: orders
    key: orderId
    schema: order_placed.avsc
    producer: order-service
    description: A customer placed an order.
  - name: PaymentTaken
    topic: payments
    key: orderId
    schema: payment_taken.avsc
    producer: payment-service
    description: The payment of an order was taken.
services:
  - name: order-service
    description: Takes orders over HTTP.
    produces: [OrderPlaced]
  - name: payment-service
    group: payment-service
    description: Charges customers.
    consumes: [OrderPlaced]
    produces: [PaymentTaken]
  - name: mail-service
    group: mail-service
    description: Sends emails.
    consumes: [PaymentTaken]
    effects: [receipt email]
chains:
  - name: Checkout
    description: A customer orders and pays, and receives a receipt.
    trigger: POST /orders
    steps:
      - {service: order-service, emits: OrderPlaced}
      - {service: payment-service, emits: PaymentTaken}
      - {service: mail-service, effect: receipt email}
`

const (
	orderPlacedAvsc = `{"type": "record", "name": "OrderPlaced", "namespace": "shop.v1", "fields": [
		{"name": "orderId", "type": "string"}, {"name": "total", "type": "long"}]}`
	paymentTakenAvsc = `{"type": "record", "name": "PaymentTaken", "namespace": "shop.v1", "fields": [
		{"name": "orderId", "type": "string"}, {"name": "amount", "type": "long"}]}`
)

// edit returns validYAML with each old string (which must occur exactly once) replaced by new.
func edit(t *testing.T, pairs ...string) string {
	t.Helper()
	s := validYAML
	for i := 0; i+1 < len(pairs); i += 2 {
		if n := strings.Count(s, pairs[i]); n != 1 {
			t.Fatalf("edit: %q occurs %d times in the valid catalog, want 1", pairs[i], n)
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

func parseValid(t *testing.T) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Parse([]byte(validYAML))
	if err != nil {
		t.Fatalf("Parse(valid catalog): %v", err)
	}
	return c
}

// wantInvalid fails unless err wraps catalog.ErrInvalid and its message contains every want.
func wantInvalid(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want an error containing %q", want)
	}
	if !errors.Is(err, catalog.ErrInvalid) {
		t.Errorf("errors.Is(err, ErrInvalid) = false for %v", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %q:\n%v", w, err)
		}
	}
}

// topicsYAML declares topic settings for validYAML's topics; the topic cases below each break one
// rule of it.
const topicsYAML = `topicDefaults:
  partitions: 6
  replication: 3
  minInsyncReplicas: 2
  retention: 7d
  cleanupPolicy: delete
topics:
  - name: orders
    partitions: 12
    retention: infinite
  - name: payments
    replication: 5
    minInsyncReplicas: 3
    retention: 36h
    cleanupPolicy: delete,compact
`

func TestTopicSettings(t *testing.T) {
	t.Parallel()
	c, err := catalog.Parse([]byte(validYAML + topicsYAML))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	for _, tc := range []struct {
		topic   string
		want    catalog.TopicSettings
		configs map[string]string
	}{
		{"orders", catalog.TopicSettings{Partitions: 12, Replication: 3, MinInsyncReplicas: 2, Retention: "infinite", CleanupPolicy: "delete"},
			map[string]string{"min.insync.replicas": "2", "retention.ms": "-1", "cleanup.policy": "delete"}},
		{"payments", catalog.TopicSettings{Partitions: 6, Replication: 5, MinInsyncReplicas: 3, Retention: "36h", CleanupPolicy: "delete,compact"},
			map[string]string{"min.insync.replicas": "3", "retention.ms": "129600000", "cleanup.policy": "compact,delete"}},
		{"orders-service.dlq", catalog.TopicSettings{Partitions: 6, Replication: 3, MinInsyncReplicas: 2, Retention: "7d", CleanupPolicy: "delete"},
			map[string]string{"min.insync.replicas": "2", "retention.ms": "604800000", "cleanup.policy": "delete"}},
	} {
		t.Run(tc.topic, func(t *testing.T) {
			t.Parallel()
			got := c.TopicSettings(tc.topic)
			if got != tc.want {
				t.Errorf("TopicSettings(%q) = %+v, want %+v", tc.topic, got, tc.want)
			}
			if cfg := got.Configs(); !maps.Equal(cfg, tc.configs) {
				t.Errorf("Configs() = %v, want %v", cfg, tc.configs)
			}
		})
	}
	// Without declarations everything is left to the broker.
	if cfg := parseValid(t).TopicSettings("orders"); cfg != (catalog.TopicSettings{}) || len(cfg.Configs()) != 0 {
		t.Errorf("a catalog without topic settings gives %+v, configs %v; want none", cfg, cfg.Configs())
	}
}

func TestParseInvalidTopics(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		old, new string
		want     []string
	}{
		{"negative partitions", "  partitions: 6\n", "  partitions: -1\n", []string{"topicDefaults: partitions -1: want at least 1"}},
		{"zero replication is fine, negative is not", "    replication: 5\n", "    replication: -3\n", []string{`topic "payments": replication -3`}},
		{"replication beyond int16", "    replication: 5\n", "    replication: 40000\n", []string{`topic "payments": replication 40000`}},
		{"min ISR above replication", "    minInsyncReplicas: 3\n", "    minInsyncReplicas: 6\n", []string{`topic "payments": minInsyncReplicas 6 exceeds replication 5`}},
		{"min ISR above the default replication", "    partitions: 12\n", "    partitions: 12\n    minInsyncReplicas: 4\n", []string{`topic "orders": minInsyncReplicas 4 (with topicDefaults) exceeds replication 3`}},
		{"default min ISR above replication", "  minInsyncReplicas: 2\n", "  minInsyncReplicas: 4\n", []string{"topicDefaults: minInsyncReplicas 4 exceeds replication 3"}},
		{"negative min ISR", "  minInsyncReplicas: 2\n", "  minInsyncReplicas: -2\n", []string{"topicDefaults: minInsyncReplicas -2"}},
		{"retention not a duration", "    retention: 36h\n", "    retention: a week\n", []string{`topic "payments": retention "a week"`}},
		{"retention zero", "    retention: 36h\n", "    retention: 0s\n", []string{`retention "0s"`}},
		{"retention zero days", "  retention: 7d\n", "  retention: 0d\n", []string{`retention "0d"`}},
		{"negative retention", "    retention: 36h\n", "    retention: -5h\n", []string{`retention "-5h"`}},
		{"unknown cleanup policy", "  cleanupPolicy: delete\n", "  cleanupPolicy: shred\n", []string{`topicDefaults: cleanupPolicy "shred"`}},
		{"not an event topic", "  - name: payments\n", "  - name: invoices\n", []string{`topic "invoices": no event is published to it`}},
		{"defined twice", "  - name: payments\n", "  - name: orders\n", []string{`topic "orders" is defined twice`}},
		{"no name", "  - name: payments\n", "  - partitions: 3\n", []string{"topic 2: name is required"}},
		{"unknown setting", "    retention: 36h\n", "    retension: 36h\n", []string{"retension"}},
		{"partitions not a number", "  partitions: 6\n", "  partitions: six\n", []string{"six"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			y := validYAML + topicsYAML
			if n := strings.Count(y, tc.old); n != 1 {
				t.Fatalf("%q occurs %d times, want 1", tc.old, n)
			}
			c, err := catalog.Parse([]byte(strings.Replace(y, tc.old, tc.new, 1)))
			if c != nil {
				t.Errorf("Parse returned a catalog along with error %v", err)
			}
			wantInvalid(t, err, tc.want...)
		})
	}
}

func TestLoadRealCatalog(t *testing.T) {
	t.Parallel()
	c, err := catalog.Load(schemas.FS)
	if err != nil {
		t.Fatalf("Load(schemas.FS): %v", err)
	}
	if got, want := c.Topics(), []string{"accounts", "users"}; !slices.Equal(got, want) {
		t.Errorf("Topics() = %q, want %q", got, want)
	}
	if e, ok := c.Event("AccountCreated"); !ok || e.Producer != "account-service" {
		t.Errorf(`Event("AccountCreated") = %+v, %v; want producer account-service`, e, ok)
	}
	if _, ok := c.Event("NoSuchEvent"); ok {
		t.Error(`Event("NoSuchEvent") found an event`)
	}
	if s, ok := c.Service("user-service"); !ok || s.Group != "user-service" {
		t.Errorf(`Service("user-service") = %+v, %v; want group user-service`, s, ok)
	}
	if got, want := c.Consumers("UserCreated"), []string{"notification-service"}; !slices.Equal(got, want) {
		t.Errorf(`Consumers("UserCreated") = %q, want %q`, got, want)
	}
}

func TestParseValid(t *testing.T) {
	t.Parallel()
	c := parseValid(t)
	if len(c.Events) != 2 || len(c.Services) != 3 || len(c.Chains) != 1 || len(c.Chains[0].Steps) != 3 {
		t.Errorf("Parse decoded %+v", c)
	}
	if err := c.CheckSchemas(fstest.MapFS{
		"order_placed.avsc":  {Data: []byte(orderPlacedAvsc)},
		"payment_taken.avsc": {Data: []byte(paymentTakenAvsc)},
	}); err != nil {
		t.Errorf("CheckSchemas: %v", err)
	}
}

func TestParseInvalid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		yaml func(t *testing.T) string
		want []string
	}{
		{
			name: "unknown field",
			yaml: func(t *testing.T) string { return edit(t, "    topic: orders\n", "    topik: orders\n") },
			want: []string{"topik"},
		},
		{
			name: "unknown top-level field",
			yaml: func(t *testing.T) string { return validYAML + "topix: [orders]\n" },
			want: []string{"topix"},
		},
		{
			name: "syntax error",
			yaml: func(t *testing.T) string {
				return edit(t, "[OrderPlaced]\n  - name: payment-service", "[OrderPlaced\n")
			},
			want: []string{"decode catalog.yaml"},
		},
		{
			name: "empty",
			yaml: func(*testing.T) string { return "" },
			want: []string{"catalog.yaml is empty"},
		},
		{
			name: "two documents",
			yaml: func(*testing.T) string { return validYAML + "---\nevents: []\n" },
			want: []string{"more than one YAML document"},
		},
		{
			name: "compatibility not a level",
			yaml: func(t *testing.T) string {
				return edit(t, "    topic: orders\n", "    topic: orders\n    compatibility: SIDEWAYS\n")
			},
			want: []string{`event "OrderPlaced": compatibility: invalid compatibility level "SIDEWAYS"`},
		},
		{
			name: "event field missing",
			yaml: func(t *testing.T) string { return edit(t, "    topic: orders\n", "") },
			want: []string{`event "OrderPlaced": topic is required`},
		},
		{
			name: "event name missing",
			yaml: func(t *testing.T) string { return edit(t, "- name: PaymentTaken\n    topic", "- topic") },
			want: []string{`event 2: name is required`},
		},
		{
			name: "service description missing",
			yaml: func(t *testing.T) string { return edit(t, "    description: Sends emails.\n", "") },
			want: []string{`service "mail-service": description is required`},
		},
		{
			name: "chain trigger missing",
			yaml: func(t *testing.T) string { return edit(t, "    trigger: POST /orders\n", "") },
			want: []string{`chain "Checkout": trigger is required`},
		},
		{
			name: "chain without steps",
			yaml: func(t *testing.T) string {
				return validYAML + "  - {name: Refund, description: Money goes back., trigger: POST /refunds}\n"
			},
			want: []string{`chain "Refund": has no steps`},
		},
		{
			name: "duplicate event",
			yaml: func(t *testing.T) string {
				return edit(t, "- name: PaymentTaken\n    topic", "- name: OrderPlaced\n    topic")
			},
			want: []string{`event "OrderPlaced" is defined twice (entries 1 and 2)`},
		},
		{
			name: "duplicate service",
			yaml: func(t *testing.T) string {
				return edit(t, "chains:\n", "  - {name: mail-service, description: Again.}\nchains:\n")
			},
			want: []string{`service "mail-service" is defined twice (entries 3 and 4)`},
		},
		{
			name: "duplicate chain",
			yaml: func(t *testing.T) string {
				return validYAML + "  - name: Checkout\n    description: Again.\n    trigger: POST /orders\n" +
					"    steps: [{service: order-service, emits: OrderPlaced}]\n"
			},
			want: []string{`chain "Checkout" is defined twice (entries 1 and 2)`},
		},
		{
			name: "unknown producer",
			yaml: func(t *testing.T) string { return edit(t, "producer: order-service", "producer: shop") },
			want: []string{`event "OrderPlaced": producer "shop" is not a service in the catalog`},
		},
		{
			name: "producer does not list event",
			yaml: func(t *testing.T) string { return edit(t, "    produces: [PaymentTaken]\n", "") },
			want: []string{`event "PaymentTaken": producer payment-service does not list PaymentTaken in produces`},
		},
		{
			name: "schema not avsc",
			yaml: func(t *testing.T) string { return edit(t, "schema: order_placed.avsc", "schema: ../order_placed.json") },
			want: []string{`event "OrderPlaced": schema "../order_placed.json" is not the path of a .avsc file`},
		},
		{
			name: "events of one topic keyed differently",
			yaml: func(t *testing.T) string {
				return edit(t, "topic: payments\n    key: orderId", "topic: orders\n    key: paymentId")
			},
			want: []string{`event "PaymentTaken": key paymentId differs from key orderId of OrderPlaced on the same topic orders`},
		},
		{
			name: "consumes unknown event",
			yaml: func(t *testing.T) string {
				return edit(t, "consumes: [PaymentTaken]", "consumes: [PaymentTaken, Refunded]")
			},
			want: []string{`service "mail-service": consumes Refunded, which is not an event in the catalog`},
		},
		{
			name: "consumes an event twice",
			yaml: func(t *testing.T) string {
				return edit(t, "consumes: [PaymentTaken]", "consumes: [PaymentTaken, PaymentTaken]")
			},
			want: []string{`service "mail-service": consumes lists PaymentTaken twice`},
		},
		{
			name: "produces unknown event",
			yaml: func(t *testing.T) string {
				return edit(t, "produces: [OrderPlaced]", "produces: [OrderPlaced, OrderShipped]")
			},
			want: []string{`service "order-service": produces OrderShipped, which is not an event in the catalog`},
		},
		{
			name: "produces another service's event",
			yaml: func(t *testing.T) string {
				return edit(t, "    effects: [receipt email]\n", "    effects: [receipt email]\n    produces: [PaymentTaken]\n")
			},
			want: []string{`service "mail-service": produces PaymentTaken, but event PaymentTaken names producer "payment-service"`},
		},
		{
			name: "consumer without group",
			yaml: func(t *testing.T) string { return edit(t, "    group: mail-service\n", "") },
			want: []string{`service "mail-service": consumes events but has no consumer group`},
		},
		{
			name: "group without consumes",
			yaml: func(t *testing.T) string {
				return edit(t, "  - name: order-service\n", "  - name: order-service\n    group: order-service\n")
			},
			want: []string{`service "order-service": has consumer group "order-service" but consumes nothing`},
		},
		{
			name: "shared group",
			yaml: func(t *testing.T) string { return edit(t, "group: mail-service", "group: payment-service") },
			want: []string{`service "mail-service": consumer group "payment-service" is already used by service payment-service`},
		},
		{
			name: "step with unknown service",
			yaml: func(t *testing.T) string { return edit(t, "{service: mail-service,", "{service: sms-service,") },
			want: []string{`chain "Checkout" step 3: service "sms-service" is not in the catalog`},
		},
		{
			name: "step with emits and effect",
			yaml: func(t *testing.T) string {
				return edit(t, "effect: receipt email}", "effect: receipt email, emits: PaymentTaken}")
			},
			want: []string{`chain "Checkout" step 3: sets both emits and effect`},
		},
		{
			name: "step with neither emits nor effect",
			yaml: func(t *testing.T) string {
				return edit(t, "{service: mail-service, effect: receipt email}", "{service: mail-service}")
			},
			want: []string{`chain "Checkout" step 3: sets neither emits nor effect`},
		},
		{
			name: "step emits an event its service does not produce",
			yaml: func(t *testing.T) string {
				return edit(t, "{service: order-service, emits: OrderPlaced}", "{service: order-service, emits: PaymentTaken}")
			},
			want: []string{`chain "Checkout" step 1: order-service does not produce PaymentTaken`},
		},
		{
			name: "step effect its service does not have",
			yaml: func(t *testing.T) string { return edit(t, "effect: receipt email}", "effect: invoice letter}") },
			want: []string{`chain "Checkout" step 3: mail-service has no effect "invoice letter"`},
		},
		{
			name: "step service does not consume the previous event",
			yaml: func(t *testing.T) string {
				return edit(t, "      - {service: payment-service, emits: PaymentTaken}\n", "")
			},
			want: []string{`chain "Checkout" step 2: mail-service does not consume OrderPlaced, emitted by step 1`},
		},
		{
			name: "effect step not last",
			yaml: func(t *testing.T) string {
				return edit(t, "effect: receipt email}\n", "effect: receipt email}\n      - {service: order-service, emits: OrderPlaced}\n")
			},
			want: []string{`chain "Checkout" step 3: effect "receipt email" ends the chain, so it must be the last step`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := catalog.Parse([]byte(tc.yaml(t)))
			if c != nil {
				t.Errorf("Parse returned a catalog along with error %v", err)
			}
			wantInvalid(t, err, tc.want...)
		})
	}
}

func TestCheckSchemas(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		catalog func(*catalog.Catalog) // optional change to the valid catalog
		fs      func(fstest.MapFS)     // change to the valid file system
		want    []string               // nil: no error
	}{
		{
			name: "valid",
			fs:   func(fstest.MapFS) {},
		},
		{
			name: "missing schema file",
			fs:   func(m fstest.MapFS) { delete(m, "payment_taken.avsc") },
			want: []string{`event "PaymentTaken": schema file payment_taken.avsc does not exist`},
		},
		{
			name: "orphan schema",
			fs:   func(m fstest.MapFS) { m["refund_issued.avsc"] = &fstest.MapFile{Data: []byte(orderPlacedAvsc)} },
			want: []string{`schema refund_issued.avsc: no event in the catalog uses it`},
		},
		{
			name: "orphan schema in a subdirectory",
			fs:   func(m fstest.MapFS) { m["old/order_placed.avsc"] = &fstest.MapFile{Data: []byte(orderPlacedAvsc)} },
			want: []string{`schema old/order_placed.avsc: no event in the catalog uses it`},
		},
		{
			name:    "schema shared by two events",
			catalog: func(c *catalog.Catalog) { c.Events[1].Schema = "order_placed.avsc" },
			want: []string{
				`schema order_placed.avsc: used by events OrderPlaced, PaymentTaken`,
				`schema payment_taken.avsc: no event in the catalog uses it`,
			},
		},
		{
			name: "record name mismatch",
			fs: func(m fstest.MapFS) {
				m["payment_taken.avsc"].Data = []byte(strings.Replace(paymentTakenAvsc, `"PaymentTaken"`, `"PaymentReceived"`, 1))
			},
			want: []string{`event "PaymentTaken": schema payment_taken.avsc defines record PaymentReceived`},
		},
		{
			name: "key field missing",
			fs: func(m fstest.MapFS) {
				m["order_placed.avsc"].Data = []byte(strings.Replace(orderPlacedAvsc, `"orderId"`, `"id"`, 1))
			},
			want: []string{`event "OrderPlaced": key field orderId is not a field of record OrderPlaced in order_placed.avsc`},
		},
		{
			name: "key field not a string",
			fs: func(m fstest.MapFS) {
				m["order_placed.avsc"].Data = []byte(strings.Replace(orderPlacedAvsc, `"orderId", "type": "string"`, `"orderId", "type": "long"`, 1))
			},
			want: []string{`event "OrderPlaced": key field orderId in order_placed.avsc is a long; a key must be a string`},
		},
		{
			name: "not a record",
			fs:   func(m fstest.MapFS) { m["order_placed.avsc"].Data = []byte(`"string"`) },
			want: []string{`event "OrderPlaced": schema order_placed.avsc is a string, not a record`},
		},
		{
			name: "not Avro",
			fs:   func(m fstest.MapFS) { m["order_placed.avsc"].Data = []byte(`{"type": "record", "name": "OrderPlaced"`) },
			want: []string{`event "OrderPlaced": parse schema order_placed.avsc`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := parseValid(t)
			if tc.catalog != nil {
				tc.catalog(c)
			}
			fsys := fstest.MapFS{
				"catalog.yaml":       {Data: []byte(validYAML)},
				"order_placed.avsc":  {Data: []byte(orderPlacedAvsc)},
				"payment_taken.avsc": {Data: []byte(paymentTakenAvsc)},
			}
			if tc.fs != nil {
				tc.fs(fsys)
			}
			err := c.CheckSchemas(fsys)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("CheckSchemas: %v", err)
				}
				return
			}
			wantInvalid(t, err, tc.want...)
		})
	}
}

func TestLoadReportsParseAndSchemaProblems(t *testing.T) {
	t.Parallel()
	_, err := catalog.Load(fstest.MapFS{
		"catalog.yaml":      {Data: []byte(strings.Replace(validYAML, "producer: order-service", "producer: shop", 1))},
		"order_placed.avsc": {Data: []byte(orderPlacedAvsc)},
	})
	wantInvalid(t, err, `producer "shop" is not a service`, `schema file payment_taken.avsc does not exist`)

	_, err = catalog.Load(fstest.MapFS{})
	if err == nil || errors.Is(err, catalog.ErrInvalid) {
		t.Errorf("Load(empty fs) = %v, want a read error that is not ErrInvalid", err)
	}
}

func TestCheckService(t *testing.T) {
	t.Parallel()
	payment := func() catalog.ServiceDescription {
		return catalog.ServiceDescription{
			Name:  "payment-service",
			Group: "payment-service",
			Handlers: []catalog.HandlerDescription{
				{Name: "take-payment", Consumes: "OrderPlaced", Emits: []string{"PaymentTaken"}},
			},
		}
	}
	mail := func() catalog.ServiceDescription {
		return catalog.ServiceDescription{
			Name:  "mail-service",
			Group: "mail-service",
			Handlers: []catalog.HandlerDescription{
				{Name: "send-receipt", Consumes: "PaymentTaken", Effects: []string{"receipt email"}},
			},
		}
	}
	for _, tc := range []struct {
		name string
		desc catalog.ServiceDescription
		want []string // nil: no error
	}{
		{name: "matching producer", desc: catalog.ServiceDescription{Name: "order-service", Emits: []string{"OrderPlaced"}}},
		{name: "matching consumer", desc: payment()},
		{name: "matching effect", desc: mail()},
		{
			name: "unknown service",
			desc: catalog.ServiceDescription{Name: "sms-service"},
			want: []string{`service "sms-service": registered in code but not in the catalog`},
		},
		{
			name: "no name",
			desc: catalog.ServiceDescription{},
			want: []string{"service description: name is required"},
		},
		{
			name: "missing handler",
			desc: func() catalog.ServiceDescription {
				d := payment()
				d.Handlers, d.Emits = nil, []string{"PaymentTaken"}
				return d
			}(),
			want: []string{`service "payment-service": catalog says it consumes OrderPlaced, no handler in code`},
		},
		{
			name: "extra handler",
			desc: func() catalog.ServiceDescription {
				d := payment()
				d.Handlers = append(d.Handlers, catalog.HandlerDescription{Name: "refund", Consumes: "PaymentTaken"})
				return d
			}(),
			want: []string{`service "payment-service": code handles PaymentTaken (handler "refund"), catalog does not list it in consumes`},
		},
		{
			name: "extra emit outside handlers",
			desc: catalog.ServiceDescription{Name: "order-service", Emits: []string{"OrderPlaced", "OrderShipped"}},
			want: []string{`service "order-service": code emits OrderShipped (outside handlers), catalog does not list it in produces`},
		},
		{
			name: "extra emit in handler",
			desc: func() catalog.ServiceDescription {
				d := payment()
				d.Handlers[0].Emits = append(d.Handlers[0].Emits, "OrderPlaced")
				return d
			}(),
			want: []string{`service "payment-service": code emits OrderPlaced (handler "take-payment"), catalog does not list it in produces`},
		},
		{
			name: "missing emit",
			desc: catalog.ServiceDescription{Name: "order-service"},
			want: []string{`service "order-service": catalog says it produces OrderPlaced, nothing in code emits it`},
		},
		{
			name: "extra effect",
			desc: func() catalog.ServiceDescription {
				d := mail()
				d.Handlers[0].Effects = append(d.Handlers[0].Effects, "sms")
				return d
			}(),
			want: []string{`service "mail-service": code has effect "sms" (handler "send-receipt"), catalog does not list it in effects`},
		},
		{
			name: "missing effect",
			desc: func() catalog.ServiceDescription {
				d := mail()
				d.Handlers[0].Effects = nil
				return d
			}(),
			want: []string{`service "mail-service": catalog says it has effect "receipt email", no handler in code declares it`},
		},
		{
			name: "wrong group",
			desc: func() catalog.ServiceDescription {
				d := payment()
				d.Group = "payments"
				return d
			}(),
			want: []string{`service "payment-service": code uses consumer group "payments", catalog says "payment-service"`},
		},
		{
			name: "group on a service that consumes nothing",
			desc: catalog.ServiceDescription{Name: "order-service", Group: "order-service", Emits: []string{"OrderPlaced"}},
			want: []string{`service "order-service": code uses consumer group "order-service", catalog says none`},
		},
		{
			name: "duplicate handler names",
			desc: func() catalog.ServiceDescription {
				d := payment()
				d.Handlers = append(d.Handlers, d.Handlers[0])
				return d
			}(),
			want: []string{`service "payment-service": handler name "take-payment" is registered twice`},
		},
		{
			name: "handler without name",
			desc: func() catalog.ServiceDescription {
				d := payment()
				d.Handlers[0].Name = ""
				return d
			}(),
			want: []string{`service "payment-service": handler 1 (consumes OrderPlaced) has no name`},
		},
		{
			name: "handler without event",
			desc: func() catalog.ServiceDescription {
				d := payment()
				d.Handlers = append(d.Handlers, catalog.HandlerDescription{Name: "idle"})
				return d
			}(),
			want: []string{`service "payment-service": handler "idle" consumes no event`},
		},
		{
			name: "chain step not backed by the handler of the previous event",
			desc: func() catalog.ServiceDescription {
				d := payment()
				d.Handlers[0].Emits, d.Emits = nil, []string{"PaymentTaken"}
				return d
			}(),
			want: []string{`chain "Checkout" step 2: catalog says payment-service emits PaymentTaken on OrderPlaced, ` +
				`no handler of OrderPlaced declares it (handlers "take-payment")`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := parseValid(t).CheckService(tc.desc)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("CheckService: %v", err)
				}
				return
			}
			wantInvalid(t, err, tc.want...)
		})
	}
}

func TestWriteMarkdownGolden(t *testing.T) {
	t.Parallel()
	c, err := catalog.Load(schemas.FS)
	if err != nil {
		t.Fatalf("Load(schemas.FS): %v", err)
	}
	var got bytes.Buffer
	if err := c.WriteMarkdown(&got); err != nil {
		t.Fatalf("WriteMarkdown: %v", err)
	}
	golden := filepath.Join("testdata", "CATALOG.golden.md")
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatalf("update golden file: %v", err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden file (run go test ./pkg/catalog -update to create it): %v", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("WriteMarkdown differs from %s; run go test ./pkg/catalog -update and review the diff.\ngot:\n%s", golden, got.Bytes())
	}
}

func TestWriteMarkdownEscapes(t *testing.T) {
	t.Parallel()
	c := &catalog.Catalog{
		Events: []catalog.Event{{Name: "A", Topic: "t", Key: "k", Schema: "a.avsc", Producer: "s-1", Description: "x | y"}},
		Services: []catalog.Service{
			{Name: "s-1", Produces: []string{"A"}},
			{Name: "s_1", Group: "g", Consumes: []string{"A"}, Effects: []string{`say "hi"`}},
		},
		Chains: []catalog.Chain{{Name: "C", Description: "d", Trigger: `GET "/"`, Steps: []catalog.Step{
			{Service: "s-1", Emits: "A"}, {Service: "s_1", Effect: `say "hi"`},
		}}},
	}
	var b bytes.Buffer
	if err := c.WriteMarkdown(&b); err != nil {
		t.Fatalf("WriteMarkdown: %v", err)
	}
	for _, want := range []string{
		`| x \| y |`,
		`trigger[/"GET #quot;/#quot;"/]`,
		`svc_s_1["s-1"]`,
		`svc_s_1_2["s_1"]`,
		`evt_A(["A"])`,
		`fx_say_hi{{"say #quot;hi#quot;"}}`,
		"trigger --> svc_s_1\n    svc_s_1 --> evt_A\n    evt_A --> svc_s_1_2\n    svc_s_1_2 --> fx_say_hi\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

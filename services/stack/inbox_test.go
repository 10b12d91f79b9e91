package stack_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/services/stack/stacktest"
)

// TestInboxDeduplicatesAfterRestart: the inbox a running version wrote is what keeps a restarted
// service (the same code, the same database) from applying an event again. The consumers are
// stopped, their groups rewound to the start of every topic, and started again: every record,
// one with a ce_id and one without (identified by its position, RecordID), is redelivered and
// must be acknowledged as a duplicate, with no second user and no second email. A changed
// derivation of the inbox keys would make each one new.
func TestInboxDeduplicatesAfterRestart(t *testing.T) {
	t.Parallel()
	cfg := stacktest.Config(t)
	smtp := stacktest.WithSMTP(t, &cfg)
	s := stacktest.StartConfig(t, cfg)
	bare := stacktest.AccountCreated(t, s, "ignored", "acc-inbox-bare", "inboxbare")
	bare.Headers = nil // kcat without -H: the inbox key is the record's position
	stacktest.Produce(t, s, stacktest.AccountCreated(t, s, envelope.NewID(), "acc-inbox", "inbox"), bare)
	stacktest.Eventually(t, 30*time.Second, func() error {
		if n := smtp.Count(); n < 2 {
			return fmt.Errorf("%d of 2 welcome emails delivered", n)
		}
		return nil
	})
	stacktest.Settled(t, s, 30*time.Second)
	const records = 2 // per consumer: two AccountCreated for the user-service, two UserCreated for the notification-service
	for _, name := range []string{"user-service", "notification-service"} {
		if st := s.Service(name).Runner().Stats(); st.Handled != records || st.Duplicates != 0 {
			t.Fatalf("%s before the restart: %+v, want %d handled", name, st, records)
		}
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, name := range []string{"user-service", "notification-service"} {
		r := s.Service(name).Runner()
		group, topics := r.Group(), r.Topics()
		if err := s.StopService(name); err != nil {
			t.Fatalf("stop %s: %v", name, err)
		}
		rewind(t, adm, group, topics)
		if err := s.StartService(context.Background(), name); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
	}
	stacktest.Eventually(t, 30*time.Second, func() error {
		for _, name := range []string{"user-service", "notification-service"} {
			if st := s.Service(name).Runner().Stats(); st.Handled+st.Duplicates < records {
				return fmt.Errorf("%s after the restart: %+v", name, st)
			}
		}
		return nil
	})
	stacktest.Settled(t, s, 30*time.Second)
	for _, name := range []string{"user-service", "notification-service"} {
		if st := s.Service(name).Runner().Stats(); st.Duplicates != records || st.Handled != 0 {
			t.Errorf("%s after the restart: %+v, want every one of the %d redelivered records a duplicate", name, st, records)
		}
	}
	for _, bad := range stacktest.Deliveries(smtp, "inbox@mail.com", "inboxbare@mail.com") {
		t.Error(bad)
	}
	if n := stacktest.Count(t, s.Service("user-service").DB, `SELECT count(*) FROM users`); n != 2 {
		t.Errorf("%d users, want 2", n)
	}
}

// rewind commits offset 0 for every partition of topics in group, which has no member.
func rewind(t *testing.T, adm *kadm.Client, group string, topics []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		t.Fatal(err)
	}
	var offs kadm.Offsets
	ends.Each(func(o kadm.ListedOffset) {
		offs.AddOffset(o.Topic, o.Partition, 0, -1)
	})
	// The stopped member may still be leaving: retry until the coordinator takes the commit.
	stacktest.Eventually(t, 30*time.Second, func() error {
		resp, err := adm.CommitOffsets(ctx, group, offs)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			return fmt.Errorf("rewind %s: %w", group, err)
		}
		return nil
	})
}

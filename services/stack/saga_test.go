package stack_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/services/stack"
	"github.com/choreo-dev/choreo/services/stack/stacktest"
)

type account struct {
	AccountID, Status, RejectedReason string
}

func getAccount(t *testing.T, s *stack.Stack, id string) account {
	t.Helper()
	var a account
	if code, err := stacktest.DoJSON("GET", stacktest.URL(s, "account-service", "/accounts/"+id), "", &a); err != nil || code != 200 {
		t.Fatalf("GET /accounts/%s: %d %v", id, code, err)
	}
	return a
}

// TestTakenUsernameIsRejected: the second registration of a username is rejected by the User
// Service and compensated by the Account Service; no user, no welcome email.
func TestTakenUsernameIsRejected(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t)
	register := func(email string) string {
		var c struct{ AccountID string }
		if code, err := stacktest.DoJSON("POST", stacktest.URL(s, "account-service", "/accounts"), `{"username":"alice","email":"`+email+`"}`, &c); code != 201 {
			t.Fatalf("POST: %d %v", code, err)
		}
		return c.AccountID
	}
	first := register("alice@mail.com")
	stacktest.Eventually(t, 10*time.Second, func() error {
		if ns, err := stacktest.Notifications(s, first); err != nil || len(ns) != 1 {
			return fmt.Errorf("welcome of the first alice: %v %v", ns, err)
		}
		return nil
	})
	second := register("alice2@mail.com")
	stacktest.Eventually(t, 10*time.Second, func() error {
		if a := getAccount(t, s, second); a.Status != "rejected" {
			return fmt.Errorf("second account is %s", a.Status)
		}
		return nil
	})
	if a := getAccount(t, s, second); a.RejectedReason == "" {
		t.Errorf("rejected account carries no reason: %+v", a)
	}
	if a := getAccount(t, s, first); a.Status != "active" {
		t.Errorf("first account is %s, want active", a.Status)
	}
	if code, _ := stacktest.DoJSON("GET", stacktest.URL(s, "user-service", "/users?accountId="+second), "", nil); code != http.StatusNotFound {
		t.Errorf("user of the rejected account: %d, want 404", code)
	}
	stacktest.Settled(t, s, 30*time.Second) // whatever the rejection could cause has happened
	if ns, _ := stacktest.Notifications(s, second); len(ns) != 0 {
		t.Errorf("the rejected account got %d emails", len(ns))
	}
}

// TestUsernameRaceHasOneWinner: two registrations of one username on different partitions at
// once. Exactly one becomes a user (with one welcome email); the other is rejected.
func TestUsernameRaceHasOneWinner(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const races = 5
	var recs []*kgo.Record
	for i := range races {
		for side := range 2 {
			r := stacktest.AccountCreated(t, s, envelope.NewID(), fmt.Sprintf("race-%d-%d", i, side), fmt.Sprintf("racer%d", i))
			r.Partition = int32(side) // same username, different partitions
			recs = append(recs, r)
		}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for i := range races {
		a, b := fmt.Sprintf("race-%d-0", i), fmt.Sprintf("race-%d-1", i)
		// The accounts were published straight to Kafka, so the Account Service has no rows for
		// them (its compensation is covered above); the outcome is in the User and Notification
		// Services.
		var users int
		stacktest.Eventually(t, 15*time.Second, func() error {
			users = stacktest.Count(t, s.Service("user-service").DB, `SELECT count(*) FROM users WHERE username = $1`, fmt.Sprintf("racer%d", i))
			rejected := stacktest.Count(t, s.Service("user-service").DB, `SELECT count(*) FROM rejections WHERE username = $1`, fmt.Sprintf("racer%d", i))
			if users+rejected != 2 {
				return fmt.Errorf("racer%d: %d users, %d rejections", i, users, rejected)
			}
			return nil
		})
		if users != 1 {
			t.Errorf("racer%d: %d users, want exactly 1", i, users)
		}
		stacktest.Eventually(t, 10*time.Second, func() error {
			na, _ := stacktest.Notifications(s, a)
			nb, _ := stacktest.Notifications(s, b)
			if len(na)+len(nb) != 1 {
				return fmt.Errorf("racer%d: %d + %d welcome emails, want 1", i, len(na), len(nb))
			}
			return nil
		})
	}
}

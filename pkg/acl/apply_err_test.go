package acl_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/choreo-dev/choreo/pkg/acl"
)

// TestApplyKeepsErrorsBeforeATransportFailure: when a CreateACLs call fails in transport,
// Apply still reports the per-ACL errors of the calls before it.
func TestApplyKeepsErrorsBeforeATransportFailure(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var calls atomic.Int32
	c.ControlKey(int16(kmsg.CreateACLs), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if calls.Add(1) == 1 { // the first grant: refused by the broker
			resp := req.(*kmsg.CreateACLsRequest).ResponseKind().(*kmsg.CreateACLsResponse)
			for range req.(*kmsg.CreateACLsRequest).Creations {
				r := kmsg.NewCreateACLsResponseResult()
				r.ErrorCode = kerr.InvalidRequest.Code
				resp.Results = append(resp.Results, r)
			}
			return resp, nil, true
		}
		return nil, errors.New("connection dropped"), true // later grants: no answer
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RequestRetries(0), kgo.RetryTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	p := plan(t)
	if len(p.Grants()) < 2 {
		t.Fatalf("the catalog's plan has %d grants; the test needs two", len(p.Grants()))
	}
	err = acl.Apply(ctx, kadm.NewClient(cl), p)
	if !errors.Is(err, kerr.InvalidRequest) {
		t.Errorf("Apply error = %v, want the first grant's InvalidRequest kept", err)
	}
	if err == nil || !strings.Contains(err.Error(), p.Grants()[1].String()) {
		t.Errorf("Apply error = %v, want the second grant's transport failure too", err)
	}
}

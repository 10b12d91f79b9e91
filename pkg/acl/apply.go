package acl

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// scramIterations is what Kafka's own tools use by default for SCRAM-SHA-512 (the broker
// accepts 4096 to 16384).
const scramIterations = 8192

// UpsertUsers creates the SCRAM-SHA-512 users of passwords (user name to password), or sets
// their passwords if they exist.
func UpsertUsers(ctx context.Context, adm *kadm.Client, passwords map[string]string) error {
	var ups []kadm.UpsertSCRAM
	for u, pw := range passwords {
		ups = append(ups, kadm.UpsertSCRAM{User: u, Mechanism: kadm.ScramSha512, Iterations: scramIterations, Password: pw})
	}
	if len(ups) == 0 {
		return nil
	}
	res, err := adm.AlterUserSCRAMs(ctx, nil, ups)
	if err != nil {
		return fmt.Errorf("create SCRAM users: %w", err)
	}
	var errs []error
	for _, r := range res {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("SCRAM user %s: %w (%s)", r.User, r.Err, r.ErrMessage))
		}
	}
	return errors.Join(errs...)
}

// Apply creates the plan's ACLs. Creating an ACL that exists is a no-op, so Apply is
// idempotent. It removes nothing: Check reports what is extra.
func Apply(ctx context.Context, adm *kadm.Client, plan Plan) error {
	var errs []error
	for _, g := range plan.Grants() {
		b := kadm.NewACLs().Allow(g.Principal).AllowHosts("*").Operations(g.Operation).
			ResourcePatternType(kadm.ACLPatternLiteral)
		switch g.Resource {
		case kmsg.ACLResourceTypeTopic:
			b.Topics(g.Name)
		case kmsg.ACLResourceTypeGroup:
			b.Groups(g.Name)
		case kmsg.ACLResourceTypeCluster:
			b.Clusters()
		default:
			return fmt.Errorf("grant %s: resource type %s is not supported", g, g.Resource)
		}
		res, err := adm.CreateACLs(ctx, b)
		if err != nil {
			// The errors of the grants before this one are reported too, not lost.
			return errors.Join(append(errs, fmt.Errorf("create ACL %s: %w", g, err))...)
		}
		for _, r := range res {
			if r.Err != nil {
				errs = append(errs, fmt.Errorf("create ACL %s: %w (%s)", g, r.Err, r.ErrMessage))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return awaitGrants(ctx, adm, plan, visibleWithin)
}

// visibleWithin bounds how long Apply waits for the brokers to show what it created.
const visibleWithin = 15 * time.Second

// awaitGrants waits until the cluster describes every grant of plan. KRaft brokers apply new ACLs
// from the metadata log asynchronously, so without the wait a Check (or a service starting with
// its new principal) right after Apply can still miss the last ones.
func awaitGrants(ctx context.Context, adm *kadm.Client, plan Plan, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		d, err := Check(ctx, adm, plan)
		if err != nil {
			return err
		}
		if len(d.Missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d created ACL(s) not visible after %s, first %s", len(d.Missing), within, d.Missing[0])
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Check compares the cluster's ACLs and SCRAM users with the plan.
func Check(ctx context.Context, adm *kadm.Client, plan Plan) (Drift, error) {
	all := kadm.NewACLs().AnyResource().Allow().AllowHosts().Deny().DenyHosts().Operations().
		ResourcePatternType(kadm.ACLPatternAny)
	res, err := adm.DescribeACLs(ctx, all)
	if err != nil {
		return Drift{}, fmt.Errorf("describe ACLs: %w", err)
	}
	var live []kadm.DescribedACL
	for _, r := range res {
		if r.Err != nil {
			return Drift{}, fmt.Errorf("describe ACLs: %w (%s)", r.Err, r.ErrMessage)
		}
		live = append(live, r.Described...)
	}
	described, err := adm.DescribeUserSCRAMs(ctx)
	if err != nil {
		return Drift{}, fmt.Errorf("describe SCRAM users: %w", err)
	}
	var users []string
	for u, d := range described {
		if d.Err == nil && len(d.CredInfos) > 0 {
			users = append(users, u)
		}
	}
	return compare(plan, live, users), nil
}

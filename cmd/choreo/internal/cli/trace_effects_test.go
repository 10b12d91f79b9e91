package cli_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/choreo-dev/choreo/pkg/smtptest"
	"github.com/choreo-dev/choreo/services/stack/stacktest"
)

// TestTraceFailedEffect: the mail server refuses the recipient, so the welcome email fails for
// good; the trace shows the chain complete in Kafka, the effect FAILED with its error, and
// flags the chain.
func TestTraceFailedEffect(t *testing.T) {
	t.Parallel()
	cfg := stacktest.Config(t)
	cfg.SMTPAddr = smtptest.Start(t, smtptest.WithReply("RCPT", "550 5.1.1 no such mailbox")).Addr()
	s := stacktest.StartConfig(t, cfg)
	ns := s.Service("account-service").Config.Namespace
	flags := []string{"-namespace", ns, "-brokers", strings.Join(s.Brokers(), ","), "-registry", s.RegistryURL(),
		"-effects", "notification-service=" + stacktest.URL(s, "notification-service", "")}

	var created struct{ AccountID, EventID string }
	code, err := stacktest.DoJSON("POST", stacktest.URL(s, "account-service", "/accounts"), `{"username":"fay","email":"fay@mail.com"}`, &created)
	if err != nil || code != http.StatusCreated {
		t.Fatalf("POST /accounts: %d %v", code, err)
	}
	stacktest.Eventually(t, 30*time.Second, func() error {
		got, err := stacktest.Notifications(s, created.AccountID)
		if err != nil {
			return err
		}
		if len(got) != 1 || got[0].Status != "failed" {
			return fmt.Errorf("notifications %+v, want one failed", got)
		}
		return nil
	})

	tr := traceJSON(t, append([]string{created.EventID}, flags...)...)
	if tr.Matches || tr.Status != "deviating" || len(tr.Deviations) != 1 ||
		!strings.Contains(tr.Deviations[0].Message, "welcome email by notification-service failed") ||
		!strings.Contains(tr.Deviations[0].Message, "no such mailbox") {
		t.Errorf("trace json: matches %v, status %q, deviations %+v", tr.Matches, tr.Status, tr.Deviations)
	}
	r := run(t, append([]string{"trace", created.EventID}, flags...)...)
	t.Logf("choreo trace %s:\n%s", created.EventID, r.stdout.String())
	for _, re := range []string{
		`(?m)^   └─ \(effect: welcome email by notification-service  FAILED  \(\+\S+\)  error=".*no such mailbox.*"\)$`,
		`(?m)^follows catalog chain "Account registration", with 1 deviation:$`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout.String()) {
			t.Errorf("trace does not match %s:\n%s", re, r.stdout.String())
		}
	}
	r = run(t, append([]string{"trace", "-recent", "1"}, flags...)...)
	if !regexp.MustCompile(created.EventID + ` +AccountCreated +2 +\S+ +deviating +welcome email by notification-service failed`).MatchString(r.stdout.String()) {
		t.Errorf("trace -recent 1:\n%s\nstderr:\n%s", r.stdout.String(), r.stderr.String())
	}
}

// TestTraceRejectedRegistration: a second registration of a username is rejected; the trace
// shows the compensating effect the Account Service recorded, and the welcome email that the
// notification service rightly never sent is not asked for.
func TestTraceRejectedRegistration(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t)
	ns := s.Service("account-service").Config.Namespace
	flags := []string{"-namespace", ns, "-brokers", strings.Join(s.Brokers(), ","), "-registry", s.RegistryURL(),
		"-effects", "account-service=" + stacktest.URL(s, "account-service", "") + ",notification-service=" + stacktest.URL(s, "notification-service", "")}
	register := func(email string) (accountID, eventID string) {
		var c struct{ AccountID, EventID string }
		if code, err := stacktest.DoJSON("POST", stacktest.URL(s, "account-service", "/accounts"), `{"username":"rita","email":"`+email+`"}`, &c); code != http.StatusCreated {
			t.Fatalf("POST /accounts: %d %v", code, err)
		}
		return c.AccountID, c.EventID
	}
	first, _ := register("rita@mail.com")
	// The two registrations land on different partitions: unless the first one's user exists
	// before the second is sent, either may win the username.
	stacktest.Eventually(t, 30*time.Second, func() error {
		if code, err := stacktest.DoJSON("GET", stacktest.URL(s, "user-service", "/users?accountId="+first), "", nil); err != nil || code != http.StatusOK {
			return fmt.Errorf("user of the first account: %d %v", code, err)
		}
		return nil
	})
	second, eventID := register("rita2@mail.com")
	stacktest.Eventually(t, 30*time.Second, func() error {
		var a struct{ Status string }
		if code, err := stacktest.DoJSON("GET", stacktest.URL(s, "account-service", "/accounts/"+second), "", &a); err != nil || code != http.StatusOK || a.Status != "rejected" {
			return fmt.Errorf("second account: %d %v %+v", code, err, a)
		}
		return nil
	})
	r := run(t, append([]string{"trace", eventID}, flags...)...)
	t.Logf("choreo trace %s:\n%s", eventID, r.stdout.String())
	for _, re := range []string{
		`(?m)^└─ UserRegistrationRejected  ce_id=\S+  by user-service  `,
		`(?m)^   └─ \(effect: account rejected by account-service  DONE  \(\+\S+\)\)$`,
		`(?m)^matches catalog chain "Account registration rejected"$`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout.String()) {
			t.Errorf("trace does not match %s:\n%s\nstderr:\n%s", re, r.stdout.String(), r.stderr.String())
		}
	}
}

package cli_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/deadletter"
	"github.com/choreo-dev/choreo/pkg/dlq"
	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/pkg/kafkatest"
	"github.com/choreo-dev/choreo/services/stack"
	"github.com/choreo-dev/choreo/services/stack/stacktest"
)

func TestDLQUsage(t *testing.T) {
	t.Parallel()
	runUsage(t, []usageCase{
		{name: "listed in the commands", args: []string{"help"}, wantCode: 0, wantStderr: []string{"dlq", "list|show|replay"}},
		{name: "no subcommand", args: []string{"dlq"}, wantCode: 2, wantStderr: []string{"want list, show or replay", "choreo dlq replay <group>"}},
		{name: "-h", args: []string{"dlq", "-h"}, wantCode: 0, wantStderr: []string{"choreo dlq list <group>", "choreo dlq show <group> <offset>", "choreo dlq replay <group>"}},
		{name: "unknown subcommand", args: []string{"dlq", "purge", "g"}, wantCode: 2, wantStderr: []string{`"purge"`}},
		{name: "list without group", args: []string{"dlq", "list"}, wantCode: 2, wantStderr: []string{"got 0", "choreo dlq list <group>"}},
		{name: "list with two groups", args: []string{"dlq", "list", "a", "b"}, wantCode: 2, wantStderr: []string{"got 2"}},
		{name: "list empty group", args: []string{"dlq", "list", ""}, wantCode: 2, wantStderr: []string{"empty argument"}},
		{name: "list unknown flag", args: []string{"dlq", "list", "g", "-nope"}, wantCode: 2, wantStderr: []string{"-nope"}},
		{name: "list -h", args: []string{"dlq", "list", "-h"}, wantCode: 0, wantStderr: []string{"-brokers", "KAFKA_BROKERS", "-registry"}},
		{name: "show without offset", args: []string{"dlq", "show", "g"}, wantCode: 2, wantStderr: []string{"got 1", "choreo dlq show <group> <offset>"}},
		{name: "show bad offset", args: []string{"dlq", "show", "g", "x"}, wantCode: 2, wantStderr: []string{`offset "x"`}},
		{name: "show bad partition", args: []string{"dlq", "show", "g", "1", "-partition", "-2"}, wantCode: 2, wantStderr: []string{"-partition -2"}},
		{name: "replay neither offset nor all", args: []string{"dlq", "replay", "g"}, wantCode: 2, wantStderr: []string{"either -offset or -all"}},
		{name: "replay offset and all", args: []string{"dlq", "replay", "g", "--offset", "1", "--all"}, wantCode: 2, wantStderr: []string{"either -offset or -all"}},
		{name: "replay all on a partition", args: []string{"dlq", "replay", "g", "--all", "-partition", "1"}, wantCode: 2, wantStderr: []string{"-partition goes with -offset"}},
		{name: "replay negative offset", args: []string{"dlq", "replay", "g", "--offset=-4"}, wantCode: 2, wantStderr: []string{"-offset -4"}},
		{name: "replay replication factor 0", args: []string{"dlq", "replay", "g", "--all", "-replication-factor", "0"}, wantCode: 2, wantStderr: []string{"-replication-factor 0"}},
		{name: "replay -h", args: []string{"dlq", "replay", "-h"}, wantCode: 0, wantStderr: []string{"-force", "-all", "-offset", "-replication-factor"}},
	})
}

func TestDLQBrokersUnreachable(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"dlq", "list", "g", "-brokers", "127.0.0.1:1"},
		{"dlq", "show", "g", "0", "-brokers", "127.0.0.1:1"},
		{"dlq", "replay", "g", "--all", "-brokers", "127.0.0.1:1"},
	} {
		t.Run(args[1], func(t *testing.T) {
			t.Parallel()
			r := run(t, args...)
			if r.code != 1 {
				t.Errorf("exit status = %d, want 1\nstderr:\n%s", r.code, r.stderr.String())
			}
			for _, s := range []string{"KAFKA_BROKERS", "-brokers", "127.0.0.1:1"} {
				if !strings.Contains(r.stderr.String(), s) {
					t.Errorf("stderr does not mention %q:\n%s", s, r.stderr.String())
				}
			}
		})
	}
}

func TestDLQGroupWithoutDeadLetterTopic(t *testing.T) {
	t.Parallel()
	group := kafkatest.Namespace(t) + ".nobody"
	r := run(t, "dlq", "list", group, "-brokers", strings.Join(kafkatest.Brokers(t), ","))
	if r.code != 1 {
		t.Errorf("exit status = %d, want 1\nstderr:\n%s", r.code, r.stderr.String())
	}
	for _, s := range []string{"no dead-letter topic", group + ".dlq", "namespace"} {
		if !strings.Contains(r.stderr.String(), s) {
			t.Errorf("stderr does not mention %q:\n%s", s, r.stderr.String())
		}
	}
}

// startStack starts the stack the end-to-end tests of the command line run against.
func startStack(t *testing.T) *stack.Stack {
	t.Helper()
	return stacktest.Start(t)
}

// listed is a line of `dlq list`.
type listed struct {
	Partition       int32
	Offset          int64
	Key             string
	SourceTopic     string
	SourcePartition int32
	SourceOffset    int64
	Group           string
	Handler         string
	Reason          string
	Class           string
	Error           string
	Attempts        int
	Time            time.Time
	Type            string
	ID              string
	Replayed        bool
	Replay          *dlq.Replay
	DecodeError     string
}

func list(t *testing.T, args ...string) []listed {
	t.Helper()
	r := run(t, append([]string{"dlq", "list"}, args...)...)
	if r.code != 0 {
		t.Fatalf("dlq list: exit status %d\nstderr:\n%s", r.code, r.stderr.String())
	}
	var ls []listed
	for line := range strings.Lines(r.stdout.String()) {
		var l listed
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("dlq list line %q: %v", line, err)
		}
		ls = append(ls, l)
	}
	return ls
}

func byID(ls []listed, id string) (listed, bool) {
	for _, l := range ls {
		if l.ID == id {
			return l, true
		}
	}
	return listed{}, false
}

// TestDLQEndToEnd: the user-service parks an invalid account; `dlq list` and `dlq show` describe
// it; a valid event parked as the runner would have (the account "after the fix") is replayed
// once, refused a second time, and forced a third time without a second user.
func TestDLQEndToEnd(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	users := s.Service("user-service")
	group := users.Config.Scoped("user-service")
	accounts := stacktest.Topic(t, s, "AccountCreated")
	kafkaFlags := []string{"-brokers", strings.Join(s.Brokers(), ",")}
	flags := append([]string{"-registry", s.RegistryURL()}, kafkaFlags...)
	record := func(id, accountID, email string) *kgo.Record {
		return stacktest.Record(t, s, id,
			&event.AccountCreated{AccountID: accountID, Username: accountID, Email: email, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)})
	}

	// The user-service parks an account whose email is not an address, the same without any
	// headers (kcat without -H), and bytes that are no event, all on one partition (one key).
	badID := envelope.NewID()
	bare := record("ignored", "acc-bad", "not an email either")
	bare.Headers = nil
	garbage := &kgo.Record{Topic: accounts, Key: []byte("acc-bad"), Value: []byte("garbage, no event")}
	stacktest.Produce(t, s, record(badID, "acc-bad", "not an email"), bare, garbage)
	var ls []listed
	stacktest.Eventually(t, 15*time.Second, func() error {
		ls = list(t, append([]string{group}, flags...)...)
		if len(ls) != 3 {
			return fmt.Errorf("dlq list: %d lines, want 3", len(ls))
		}
		return nil
	})
	bad := ls[0]
	if bad.ID != badID || bad.Type != "AccountCreated" || bad.Key != "acc-bad" || bad.SourceTopic != accounts ||
		bad.Group != group || bad.Handler != "create-user" || bad.Reason != "handler" || bad.Class != "permanent" ||
		!strings.Contains(bad.Error, "not a bare address") || bad.Attempts != 1 || bad.Time.IsZero() || bad.Replayed || bad.Replay != nil {
		t.Errorf("dlq list: the invalid account = %+v", bad)
	}
	// Without headers: the type decoded with the registry, the ID the consumer gave it.
	if l := ls[1]; l.Type != "AccountCreated" || l.ID != envelope.RecordID(accounts, bare.Partition, bare.Offset) ||
		l.Reason != "handler" || l.Offset != bad.Offset+1 || l.DecodeError != "" {
		t.Errorf("dlq list: the headerless account = %+v", l)
	}
	if l := ls[2]; l.Type != "" || l.ID != envelope.RecordID(accounts, garbage.Partition, garbage.Offset) ||
		l.Reason != "decode" || l.Handler != "" || !strings.Contains(l.DecodeError, "Confluent") {
		t.Errorf("dlq list: the garbage = %+v", l)
	}

	t.Run("show", func(t *testing.T) { // before the next record lands on another partition at the same offset
		for _, args := range [][]string{
			{group, strconv.FormatInt(bad.Offset, 10), "-partition", strconv.Itoa(int(bad.Partition))},
			{group, strconv.FormatInt(bad.Offset, 10)}, // the only partition holding that offset
		} {
			r := run(t, append(append([]string{"dlq", "show"}, args...), flags...)...)
			if r.code != 0 {
				t.Fatalf("dlq show %v: exit status %d\nstderr:\n%s", args, r.code, r.stderr.String())
			}
			var shown struct {
				Topic     string
				Partition int32
				Offset    int64
				Type, ID  string
				Headers   map[string]string
				Event     struct{ AccountID, Email string }
				Replayed  bool
			}
			if err := json.Unmarshal(r.stdout.Bytes(), &shown); err != nil {
				t.Fatalf("dlq show: %v\n%s", err, r.stdout.String())
			}
			if shown.Topic != deadletter.Topic(group) || shown.Partition != bad.Partition || shown.Offset != bad.Offset ||
				shown.Type != "AccountCreated" || shown.ID != badID || shown.Event.AccountID != "acc-bad" ||
				shown.Event.Email != "not an email" || shown.Replayed ||
				shown.Headers[envelope.HeaderID] != badID || shown.Headers[deadletter.HeaderReason] != "handler" ||
				shown.Headers[deadletter.HeaderTopic] != accounts {
				t.Errorf("dlq show %v:\n%s", args, r.stdout.String())
			}
		}
		r := run(t, append([]string{"dlq", "show", group, "99"}, flags...)...)
		if r.code != 1 || !strings.Contains(r.stderr.String(), "no parked record") {
			t.Errorf("dlq show of a missing offset: exit status %d\nstderr:\n%s", r.code, r.stderr.String())
		}
	})

	// After the fix: the account, valid now, parked as the runner parks (its headers plus
	// choreo_dlq_*, keyed like the original).
	goodID := envelope.NewID()
	good := record(goodID, "acc-fixed", "fixed@mail.com")
	good.Topic = deadletter.Topic(group)
	for k, v := range map[string]string{
		deadletter.HeaderTopic: accounts, deadletter.HeaderPartition: "0", deadletter.HeaderOffset: "999",
		deadletter.HeaderGroup: group, deadletter.HeaderHandler: "create-user", deadletter.HeaderReason: "handler",
		deadletter.HeaderClass: "transient", deadletter.HeaderError: "database is locked", deadletter.HeaderAttempts: "5",
		deadletter.HeaderTime: time.Now().UTC().Format(time.RFC3339Nano),
	} {
		good.Headers = append(good.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	stacktest.Produce(t, s, good)
	parked, ok := byID(list(t, append([]string{group}, flags...)...), goodID)
	if !ok || parked.Attempts != 5 || parked.Class != "transient" {
		t.Fatalf("the parked valid account is not listed right: %+v", parked)
	}
	replay := []string{"dlq", "replay", group, "--offset", strconv.FormatInt(parked.Offset, 10), "-partition", strconv.Itoa(int(parked.Partition))}
	replay = append(replay, kafkaFlags...)

	r := run(t, replay...)
	if r.code != 0 {
		t.Fatalf("dlq replay: exit status %d\nstderr:\n%s", r.code, r.stderr.String())
	}
	var replayed dlq.Result
	if err := json.Unmarshal(r.stdout.Bytes(), &replayed); err != nil {
		t.Fatalf("dlq replay output: %v\n%s", err, r.stdout.String())
	}
	if replayed.ToTopic != accounts || replayed.ID != goodID || replayed.Partition != parked.Partition || replayed.Offset != parked.Offset || replayed.Previous != nil {
		t.Errorf("dlq replay = %+v", replayed)
	}
	usersOf := func(account string) int {
		return stacktest.Count(t, users.DB, `SELECT count(*) FROM users WHERE account_id = $1`, account)
	}
	stacktest.Eventually(t, 15*time.Second, func() error {
		if n := usersOf("acc-fixed"); n != 1 {
			return fmt.Errorf("%d users of the replayed account, want 1", n)
		}
		return nil
	})

	// A second replay is refused; the listing says it was replayed.
	r = run(t, replay...)
	if r.code != 1 || !strings.Contains(r.stderr.String(), "replayed at") || !strings.Contains(r.stderr.String(), "--force") {
		t.Errorf("second dlq replay: exit status %d, want 1 saying when and --force\nstderr:\n%s", r.code, r.stderr.String())
	}
	if r.stdout.Len() != 0 {
		t.Errorf("refused replay printed %q", r.stdout.String())
	}
	ls = list(t, append([]string{group}, flags...)...)
	if l, _ := byID(ls, goodID); !l.Replayed || l.Replay == nil || l.Replay.ToTopic != accounts || l.Replay.ToOffset != replayed.ToOffset {
		t.Errorf("dlq list after the replay: %+v, want replayed to %+v", l, replayed.Replay)
	}
	if l, _ := byID(ls, badID); l.Replayed {
		t.Errorf("dlq list: the record not replayed says it was: %+v", l)
	}

	// Forced: published again with the same ce_id, which the inbox deduplicates.
	r = run(t, append(replay, "--force")...)
	if r.code != 0 {
		t.Fatalf("dlq replay --force: exit status %d\nstderr:\n%s", r.code, r.stderr.String())
	}
	var forced dlq.Result
	if err := json.Unmarshal(r.stdout.Bytes(), &forced); err != nil {
		t.Fatal(err)
	}
	if forced.Previous == nil || *forced.Previous != replayed.Replay || forced.ToOffset == replayed.ToOffset {
		t.Errorf("forced replay %+v, want a new offset and previous %+v", forced, replayed.Replay)
	}
	stacktest.Eventually(t, 15*time.Second, func() error {
		if st := users.Runner().Stats(); st.Duplicates != 1 {
			return fmt.Errorf("user-service stats %+v, want 1 duplicate", st)
		}
		return nil
	})
	if n := usersOf("acc-fixed"); n != 1 {
		t.Errorf("%d users of the account replayed twice, want 1", n)
	}

	// --all replays what was not replayed yet: the three parked by the service, parked again.
	r = run(t, append([]string{"dlq", "replay", group, "--all"}, kafkaFlags...)...)
	if r.code != 0 {
		t.Fatalf("dlq replay --all: exit status %d\nstderr:\n%s", r.code, r.stderr.String())
	}
	if lines := strings.Count(r.stdout.String(), "\n"); lines != 3 || !strings.Contains(r.stdout.String(), badID) ||
		!strings.Contains(r.stderr.String(), "replayed 3") || !strings.Contains(r.stderr.String(), "skipped 1") {
		t.Errorf("dlq replay --all:\nstdout:\n%s\nstderr:\n%s", r.stdout.String(), r.stderr.String())
	}
	stacktest.Eventually(t, 15*time.Second, func() error {
		if st := users.Runner().Stats(); st.Parked != 6 || st.Duplicates != 1 {
			return fmt.Errorf("user-service stats %+v, want 3 parked twice, 1 duplicate", st)
		}
		return nil
	})
}

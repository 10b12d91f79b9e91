package consumer

import "testing"

// TestMembershipLostUntilRejoined: lost partitions (fenced, session expired) end the membership
// until the client reports a later generation or a new assignment; a revoke of every partition
// is an ordinary rebalance and keeps it.
func TestMembershipLostUntilRejoined(t *testing.T) {
	var m membership
	if joined, _ := m.state(-1); joined {
		t.Fatal("joined before any join")
	}
	m.assign(map[string][]int32{"a": {0, 1}})
	if joined, n := m.state(3); !joined || n != 2 {
		t.Fatalf("after assignment: joined %v, %d partitions; want true, 2", joined, n)
	}

	m.remove(map[string][]int32{"a": {0, 1}})
	if joined, n := m.state(3); !joined || n != 0 {
		t.Fatalf("after revoking everything: joined %v, %d partitions; want still joined, 0", joined, n)
	}

	m.assign(map[string][]int32{"a": {0}})
	m.lose(map[string][]int32{"a": {0}}, 4)
	for _, gen := range []int32{4, -1} { // the generation as it was, or reset by the client
		if joined, n := m.state(gen); joined || n != 0 {
			t.Fatalf("after losing the partitions (generation %d): joined %v, %d partitions; want false, 0", gen, joined, n)
		}
	}
	// Rejoined: a later generation counts even without partitions (an idle member)...
	if joined, _ := m.state(5); !joined {
		t.Fatal("generation 5 after losing generation 4: want joined")
	}
	// ...and so does a new assignment.
	m.lose(nil, 5)
	m.assign(map[string][]int32{"a": {1}})
	if joined, n := m.state(5); !joined || n != 1 {
		t.Fatalf("assigned after loss: joined %v, %d partitions; want true, 1", joined, n)
	}
}

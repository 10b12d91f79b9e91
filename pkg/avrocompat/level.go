package avrocompat

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hamba/avro/v2"
)

// Level is a compatibility level of Confluent Schema Registry: which earlier versions a new
// schema is checked against, and in which direction.
type Level string

// The compatibility levels.
const (
	// None: no check.
	None Level = "NONE"
	// Backward: the new schema reads data written with the latest version.
	Backward Level = "BACKWARD"
	// BackwardTransitive: the new schema reads data written with every earlier version.
	BackwardTransitive Level = "BACKWARD_TRANSITIVE"
	// Forward: the latest version reads data written with the new schema.
	Forward Level = "FORWARD"
	// ForwardTransitive: every earlier version reads data written with the new schema.
	ForwardTransitive Level = "FORWARD_TRANSITIVE"
	// Full: Backward and Forward.
	Full Level = "FULL"
	// FullTransitive: BackwardTransitive and ForwardTransitive.
	FullTransitive Level = "FULL_TRANSITIVE"
)

// levels lists every level, in the order error messages name them.
var levels = []Level{None, Backward, BackwardTransitive, Forward, ForwardTransitive, Full, FullTransitive}

// ErrLevel is returned by ParseLevel for a name that is not a level.
var ErrLevel = errors.New("invalid compatibility level")

// ParseLevel returns the level named s, in any letter case.
func ParseLevel(s string) (Level, error) {
	for _, l := range levels {
		if strings.EqualFold(s, string(l)) {
			return l, nil
		}
	}
	return "", fmt.Errorf("%w %q: valid levels are NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL and FULL_TRANSITIVE", ErrLevel, s)
}

func (l Level) transitive() bool { return strings.HasSuffix(string(l), "_TRANSITIVE") }
func (l Level) backward() bool {
	return strings.HasPrefix(string(l), "BACKWARD") || strings.HasPrefix(string(l), "FULL")
}
func (l Level) forward() bool {
	return strings.HasPrefix(string(l), "FORWARD") || strings.HasPrefix(string(l), "FULL")
}

// Violation is a Problem between a new schema and one earlier version.
type Violation struct {
	Problem
	// Version is the index in the earlier versions given to Check (0 = the oldest).
	Version int
	// Backward is true when the new schema cannot read data written with that version, false
	// when that version cannot read data written with the new schema.
	Backward bool
}

func (v Violation) String() string {
	if v.Backward {
		return fmt.Sprintf("the new schema cannot read data written with version %d: %s", v.Version+1, v.Problem)
	}
	return fmt.Sprintf("version %d cannot read data written with the new schema: %s", v.Version+1, v.Problem)
}

// Check checks next against the earlier versions of its subject (oldest first) under level,
// and returns every violation; none if next may be registered. A non-transitive level checks
// against the latest earlier version only.
func Check(level Level, next avro.Schema, earlier []avro.Schema) []Violation {
	if level == None || len(earlier) == 0 {
		return nil
	}
	first := 0
	if !level.transitive() {
		first = len(earlier) - 1
	}
	var out []Violation
	for i := len(earlier) - 1; i >= first; i-- {
		if level.backward() {
			for _, p := range CanRead(next, earlier[i]) {
				out = append(out, Violation{Problem: p, Version: i, Backward: true})
			}
		}
		if level.forward() {
			for _, p := range CanRead(earlier[i], next) {
				out = append(out, Violation{Problem: p, Version: i})
			}
		}
	}
	return out
}

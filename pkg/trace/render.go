package trace

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/choreo-dev/choreo/pkg/deadletter"
)

// leaf is what the catalog adds under a node that is not a record: the effect that ends a
// chain, or the step the catalog expects after an operation that stopped. For an effect whose
// service was asked (Trace.AttachEffects), asked is set and observed is what it recorded.
type leaf struct {
	chain, service string
	effect, emits  string // one is set
	asked          bool
	observed       *Effect
}

func (l leaf) text(start time.Time) string {
	switch {
	case l.observed != nil:
		s := fmt.Sprintf("effect: %s by %s  %s  (%s)", l.effect, l.service, strings.ToUpper(l.observed.Status), since(l.observed.When().Sub(start)))
		if l.observed.Error != "" {
			s += "  error=" + strconv.Quote(oneLine(l.observed.Error))
		}
		return s
	case l.asked:
		return fmt.Sprintf("effect: %s by %s — NOT RECORDED by %s", l.effect, l.service, l.service)
	case l.effect != "":
		return fmt.Sprintf("effect: %s by %s — not an event, not observable in Kafka", l.effect, l.service)
	}
	return fmt.Sprintf("expected next in chain %q: %s emits %s — not in Kafka yet", l.chain, l.service, l.emits)
}

// leaves returns the leaves the comparison adds under the nodes of t.
func (t *Trace) leaves(c Comparison) map[*Node][]leaf {
	out := map[*Node][]leaf{}
	for _, m := range c.Matches {
		if st, ok := m.Next(); ok {
			last := m.Path[len(m.Path)-1]
			l := leaf{chain: m.Chain.Name, service: st.Service, effect: st.Effect, emits: st.Emits}
			if st.Effect != "" {
				_, l.asked = t.EffectsAsOf[st.Service]
				if e, ok := effectOf(last, st.Service, st.Effect); ok {
					l.observed = &e
				}
			}
			out[last] = append(out[last], l)
		}
	}
	return out
}

// WriteText writes the trace as an indented tree, one line per event, parked record and (from
// c, which may be the zero Comparison) expected effect or missing step, followed by the verdict:
// the catalog chains the operation matches, or the deviations.
func (t *Trace) WriteText(w io.Writer, c Comparison) error {
	var b strings.Builder
	leaves := t.leaves(c)
	var start time.Time
	if r := t.Root(); r != nil {
		start = r.When()
	}
	var write func(n *Node, head, indent string)
	write = func(n *Node, head, indent string) {
		b.WriteString(head)
		b.WriteString(textLine(n, start, head == ""))
		b.WriteByte('\n')
		extra := leaves[n]
		total := len(n.Children) + len(extra)
		for i, ch := range n.Children {
			branch, cont := "├─ ", "│  "
			if i == total-1 {
				branch, cont = "└─ ", "   "
			}
			write(ch, indent+branch, indent+cont)
		}
		for i, l := range extra {
			branch := "├─ "
			if len(n.Children)+i == total-1 {
				branch = "└─ "
			}
			fmt.Fprintf(&b, "%s%s(%s)\n", indent, branch, l.text(start))
		}
	}
	for _, r := range t.Roots {
		write(r, "", "")
	}
	b.WriteByte('\n')
	complete := c.Complete()
	switch {
	case len(complete) > 0 && len(c.Deviations) == 0:
		fmt.Fprintf(&b, "matches catalog chain %s\n", quoteAll(complete))
	case len(complete) > 0:
		fmt.Fprintf(&b, "follows catalog chain %s, with %s:\n", quoteAll(complete), plural(len(c.Deviations), "deviation"))
	case len(c.Deviations) > 0:
		fmt.Fprintf(&b, "deviates from the catalog (%s):\n", plural(len(c.Deviations), "deviation"))
	default:
		b.WriteString("not compared with the catalog\n")
	}
	for _, d := range c.Deviations {
		fmt.Fprintf(&b, "  - %s\n", d.Message)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func textLine(n *Node, start time.Time, root bool) string {
	var f []string
	when := "(" + since(n.When().Sub(start)) + ")"
	if root {
		when = n.When().UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
	if n.Parked != nil {
		p := n.Parked
		mark := "PARKED"
		if p.HandledLater {
			mark = "PARKED (handled later)"
		}
		f = append(f, mark, orUnknown(n.Type), "ce_id="+n.ID, "by group "+p.Group)
		if p.Handler != "" {
			f[len(f)-1] += " (handler " + p.Handler + ")"
		}
		f = append(f, position(n), when, deadletter.HeaderError+"="+strconv.Quote(p.Error))
		return strings.Join(f, "  ")
	}
	f = append(f, orUnknown(n.Type), "ce_id="+n.ID, "by "+by(n), position(n), when)
	if n.Copies > 0 {
		f = append(f, fmt.Sprintf("[published %d times]", n.Copies+1))
	}
	if n.DecodeError != "" {
		f = append(f, "[not decoded: "+oneLine(n.DecodeError)+"]")
	}
	return strings.Join(f, "  ")
}

func position(n *Node) string { return fmt.Sprintf("%s/%d@%d", n.Topic, n.Partition, n.Offset) }

// since formats the time from the first event: milliseconds, finer below one.
func since(d time.Duration) string {
	sign := "+"
	if d < 0 {
		sign, d = "-", -d
	}
	switch {
	case d >= time.Millisecond:
		d = d.Round(time.Millisecond)
	case d >= time.Microsecond:
		d = d.Round(time.Microsecond)
	}
	return sign + d.String()
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, " and ")
}

// WriteMermaid writes the observed operation as a Mermaid flowchart (left to right): an event
// per node, labelled with its producer and position, an arrow per causation labelled with the
// service that reacted, parked records, and (from c) the effect or missing step at the end.
func (t *Trace) WriteMermaid(w io.Writer, c Comparison) error {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	ids := map[*Node]string{}
	var edges, extra, extraEdges, parked, missing []string
	leaves := t.leaves(c)
	for i, n := range t.Events() {
		id := "e" + strconv.Itoa(i)
		if n.Parked != nil {
			id = "p" + strconv.Itoa(i)
			parked = append(parked, id)
			fmt.Fprintf(&b, "    %s>\"PARKED by %s<br/>%s<br/>%s\"]\n", id, label(n.Parked.Group), label(orUnknown(n.Type)), label(n.Parked.Error))
		} else {
			fmt.Fprintf(&b, "    %s([\"%s<br/>by %s<br/>%s\"])\n", id, label(orUnknown(n.Type)), label(by(n)), label(position(n)))
		}
		ids[n] = id
		for _, l := range leaves[n] {
			lid := "x" + strconv.Itoa(len(extra))
			switch {
			case l.observed != nil:
				extra = append(extra, fmt.Sprintf("%s{{\"%s<br/>by %s, %s\"}}", lid, label(l.effect), label(l.service), label(l.observed.Status)))
				if l.observed.Status == EffectPending || l.observed.Status == EffectFailed {
					missing = append(missing, lid)
				}
			case l.asked:
				missing = append(missing, lid)
				extra = append(extra, fmt.Sprintf("%s{{\"%s<br/>by %s, not recorded\"}}", lid, label(l.effect), label(l.service)))
			case l.effect != "":
				extra = append(extra, fmt.Sprintf("%s{{\"%s<br/>by %s, not in Kafka\"}}", lid, label(l.effect), label(l.service)))
			default:
				missing = append(missing, lid)
				extra = append(extra, fmt.Sprintf("%s[\"expected: %s<br/>chain %s, not in Kafka yet\"]", lid, label(l.emits), label(strconv.Quote(l.chain))))
			}
			extraEdges = append(extraEdges, fmt.Sprintf("%s -.->|\"%s\"| %s", id, label(l.service), lid))
		}
	}
	for _, n := range t.Events() {
		for _, ch := range n.Children {
			if ch.Parked != nil {
				edges = append(edges, fmt.Sprintf("%s -.->|\"%s\"| %s", ids[n], label(ch.Parked.Group), ids[ch]))
			} else {
				edges = append(edges, fmt.Sprintf("%s -->|\"%s\"| %s", ids[n], label(by(ch)), ids[ch]))
			}
		}
	}
	for _, line := range slices.Concat(extra, edges, extraEdges) {
		fmt.Fprintf(&b, "    %s\n", line)
	}
	if len(parked) > 0 {
		fmt.Fprintf(&b, "    classDef parked fill:#fdd,stroke:#c00\n    class %s parked\n", strings.Join(parked, ","))
	}
	if len(missing) > 0 {
		fmt.Fprintf(&b, "    classDef missing stroke-dasharray:4 4,color:#888\n    class %s missing\n", strings.Join(missing, ","))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// label escapes text for a quoted Mermaid label, in which a double quote ends the label and
// angle brackets would be read as HTML.
func label(s string) string { return labelEscaper.Replace(oneLine(s)) }

var labelEscaper = strings.NewReplacer(`"`, "#quot;", "<", "#lt;", ">", "#gt;")

package avrojson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// kind is the JSON type of a parsed value.
type kind uint8

const (
	kNull kind = iota
	kBool
	kNumber
	kString
	kObject
	kArray
)

// value is one parsed JSON value. Objects keep their members in order, with duplicates, so that
// a duplicated field is refused instead of one of its values being dropped.
type value struct {
	kind kind
	b    bool
	s    string // the string, or the number's text
	obj  []member
	arr  []value
}

type member struct {
	key string
	val value
}

// parse reads exactly one JSON value from data.
func parse(data []byte) (value, error) {
	if !utf8.Valid(data) {
		// encoding/json would replace the bytes with U+FFFD, changing the value unseen.
		return value{}, &Error{Problem: "not JSON: it is not valid UTF-8"}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := parseValue(dec)
	if err != nil {
		if errors.Is(err, io.EOF) && len(bytes.TrimSpace(data)) == 0 {
			return value{}, &Error{Problem: "want one JSON value, got none"}
		}
		return value{}, &Error{Problem: "not JSON: " + jsonProblem(err)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return value{}, &Error{Problem: "want one JSON value, found more after it"}
	}
	return v, nil
}

// jsonProblem drops the encoding/json prefix and unexpected-EOF wording that would name Go.
func jsonProblem(err error) string {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "it ends too early"
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s (at byte %d)", se.Error(), se.Offset)
	}
	return err.Error()
}

func parseValue(dec *json.Decoder) (value, error) {
	tok, err := dec.Token()
	if err != nil {
		return value{}, err
	}
	switch t := tok.(type) {
	case nil:
		return value{kind: kNull}, nil
	case bool:
		return value{kind: kBool, b: t}, nil
	case json.Number:
		return value{kind: kNumber, s: string(t)}, nil
	case string:
		return value{kind: kString, s: t}, nil
	case json.Delim:
		switch t {
		case '{':
			v := value{kind: kObject}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return value{}, err
				}
				key, ok := kt.(string)
				if !ok {
					return value{}, fmt.Errorf("object key %v is not a string", kt)
				}
				mv, err := parseValue(dec)
				if err != nil {
					return value{}, err
				}
				v.obj = append(v.obj, member{key: key, val: mv})
			}
			if _, err := dec.Token(); err != nil { // '}'
				return value{}, err
			}
			return v, nil
		case '[':
			v := value{kind: kArray, arr: []value{}}
			for dec.More() {
				ev, err := parseValue(dec)
				if err != nil {
					return value{}, err
				}
				v.arr = append(v.arr, ev)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return value{}, err
			}
			return v, nil
		}
	}
	return value{}, fmt.Errorf("unexpected %v", tok)
}

// what describes a JSON value in an error message: its type and, if short, the value.
func (v value) what() string {
	switch v.kind {
	case kNull:
		return "null"
	case kBool:
		return fmt.Sprintf("a boolean (%t)", v.b)
	case kNumber:
		return "a number (" + clip(v.s) + ")"
	case kString:
		b, _ := json.Marshal(clip(v.s))
		return "a string (" + string(b) + ")"
	case kObject:
		return "an object"
	default:
		return "an array"
	}
}

func clip(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

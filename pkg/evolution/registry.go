package evolution

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/choreo-dev/choreo/pkg/catalog"
)

// CheckRegistry checks the current schema of every event of cat against the live versions its
// subject holds in the registry cl talks to, under the event's compatibility level. The subject
// is the one choreo registers under (topic-record-name: <topic>-<record full name>, the topic
// prefixed with "<namespace>." if namespace is set). A subject the registry does not know has
// nothing to break.
func CheckRegistry(ctx context.Context, cl *sr.Client, fsys fs.FS, cat *catalog.Catalog, namespace string) (*Report, error) {
	r := &Report{}
	for _, e := range cat.Events {
		cur, err := current(fsys, e)
		if err != nil {
			return nil, err
		}
		topic := e.Topic
		if namespace != "" {
			topic = namespace + "." + topic
		}
		named, ok := cur.Schema.(avro.NamedSchema)
		if !ok {
			return nil, fmt.Errorf("%s: not a named schema", e.Schema)
		}
		subject := topic + "-" + named.FullName()
		versions, err := cl.SubjectVersions(ctx, subject)
		var re *sr.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("versions of subject %s: %w", subject, err)
		}
		var earlier []Version
		for _, v := range versions {
			ss, err := cl.SchemaByVersion(ctx, subject, v)
			if err != nil {
				return nil, fmt.Errorf("subject %s version %d: %w", subject, v, err)
			}
			s, err := parse([]byte(ss.Schema.Schema))
			if err != nil {
				return nil, fmt.Errorf("subject %s version %d: %w", subject, v, err)
			}
			earlier = append(earlier, Version{Name: fmt.Sprintf("registry subject %s version %d", subject, v), Text: ss.Schema.Schema, Schema: s})
		}
		if n := len(earlier); n > 0 && earlier[n-1].Text == cur.Text {
			earlier = earlier[:n-1] // already registered: check it as the latest against the rest
		}
		r.Versions += len(earlier) + 1
		r.Findings = append(r.Findings, findings(e, cur, earlier)...)
	}
	return r, nil
}

package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/sr"
)

// api calls srfake's REST API in-process, without a network: srfake has no export API, and its
// REST API is the contract it keeps.
type api struct{ h http.Handler }

// do sends a request with body (if not nil) encoded as JSON and decodes a 2xx answer into out
// (if not nil). It returns the status; any status other than 2xx and 404 is an error.
func (a api) do(method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, fmt.Errorf("%s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	}
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, req)
	switch {
	case rec.Code == http.StatusNotFound:
		return rec.Code, nil
	case rec.Code < 200 || rec.Code > 299:
		return rec.Code, fmt.Errorf("%s %s: %d %s", method, path, rec.Code, strings.TrimSpace(rec.Body.String()))
	case out != nil:
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			return rec.Code, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return rec.Code, nil
}

// must is do for requests whose target must exist.
func (a api) must(method, path string, body, out any) error {
	code, err := a.do(method, path, body, out)
	if err == nil && code == http.StatusNotFound {
		err = fmt.Errorf("%s %s: not found", method, path)
	}
	return err
}

func subjectPath(prefix, subject string) string { return prefix + url.PathEscape(subject) }

func versionPath(subject string, version int) string {
	return subjectPath("/subjects/", subject) + "/versions/" + strconv.Itoa(version)
}

// snapshot reads the whole state through the REST API. maxID is the highest schema ID known to
// exist; IDs up to it, and above it up to the first free one, that no subject version uses are
// probed by ID, since srfake keeps serving a schema whose versions were permanently deleted.
// snapshot returns the state and the new highest ID.
func (a api) snapshot(maxID int) (*state, int, error) {
	var active, all []string
	if err := a.must(http.MethodGet, "/subjects", nil, &active); err != nil {
		return nil, 0, err
	}
	if err := a.must(http.MethodGet, "/subjects?deleted=true", nil, &all); err != nil {
		return nil, 0, err
	}
	isActive := make(map[string]bool, len(active))
	for _, s := range active {
		isActive[s] = true
	}

	st := &state{Version: stateVersion, Schemas: []schemaEntry{}, Subjects: map[string]subjectState{}}
	used := make(map[int]bool)
	for _, subject := range all {
		var versions, deleted []int
		if err := a.must(http.MethodGet, subjectPath("/subjects/", subject)+"/versions?deleted=true", nil, &versions); err != nil {
			return nil, 0, err
		}
		if err := a.must(http.MethodGet, subjectPath("/subjects/", subject)+"/versions?deletedOnly=true", nil, &deleted); err != nil {
			return nil, 0, err
		}
		isDeleted := make(map[int]bool, len(deleted))
		for _, v := range deleted {
			isDeleted[v] = true
		}
		for _, v := range versions {
			var ss sr.SubjectSchema
			if err := a.must(http.MethodGet, versionPath(subject, v)+"?deleted=true", nil, &ss); err != nil {
				return nil, 0, err
			}
			st.Schemas = append(st.Schemas, schemaEntry{
				Subject:    subject,
				Version:    v,
				ID:         ss.ID,
				schemaBody: bodyOf(ss.Schema),
				Deleted:    isDeleted[v],
			})
			used[ss.ID] = true
			maxID = max(maxID, ss.ID)
		}

		ss := subjectState{Deleted: !isActive[subject]}
		var compat struct {
			Level *sr.CompatibilityLevel `json:"compatibilityLevel"`
		}
		if _, err := a.do(http.MethodGet, subjectPath("/config/", subject)+"?defaultToGlobal=false", nil, &compat); err != nil {
			return nil, 0, err
		}
		ss.Compatibility = compat.Level
		var mode struct {
			Mode *sr.Mode `json:"mode"`
		}
		if _, err := a.do(http.MethodGet, subjectPath("/mode/", subject)+"?defaultToGlobal=false", nil, &mode); err != nil {
			return nil, 0, err
		}
		ss.Mode = mode.Mode
		if ss != (subjectState{}) || len(versions) == 0 {
			st.Subjects[subject] = ss
		}
	}

	var compat struct {
		Level *sr.CompatibilityLevel `json:"compatibilityLevel"`
	}
	if err := a.must(http.MethodGet, "/config", nil, &compat); err != nil {
		return nil, 0, err
	}
	var mode struct {
		Mode *sr.Mode `json:"mode"`
	}
	if err := a.must(http.MethodGet, "/mode", nil, &mode); err != nil {
		return nil, 0, err
	}
	st.Config = configState{Compatibility: compat.Level, Mode: mode.Mode}

	for id := 1; ; id++ {
		if used[id] {
			continue
		}
		var s sr.Schema
		code, err := a.do(http.MethodGet, "/schemas/ids/"+strconv.Itoa(id), nil, &s)
		if err != nil {
			return nil, 0, err
		}
		if code == http.StatusNotFound {
			if id > maxID {
				break
			}
			continue
		}
		st.Orphans = append(st.Orphans, orphanEntry{ID: id, schemaBody: bodyOf(s)})
		maxID = max(maxID, id)
	}

	st.normalize()
	return st, maxID, nil
}

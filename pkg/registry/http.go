package registry

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/choreo-dev/choreo/pkg/avrocompat"
)

// contentType is what Confluent's registry answers with, and what its clients send.
const contentType = "application/vnd.schemaregistry.v1+json"

// apiError is an error answer in Confluent's shape: {"error_code":40401,"message":"..."}.
type apiError struct {
	status int
	code   int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func subjectNotFound(s string) *apiError {
	return &apiError{http.StatusNotFound, 40401, fmt.Sprintf("Subject '%s' not found.", s)}
}

func versionNotFound(v int) *apiError {
	return &apiError{http.StatusNotFound, 40402, fmt.Sprintf("Version %d not found.", v)}
}

func schemaNotFound(id string) *apiError {
	if id == "" {
		return &apiError{http.StatusNotFound, 40403, "Schema not found"}
	}
	return &apiError{http.StatusNotFound, 40403, fmt.Sprintf("Schema %s not found", id)}
}

func invalidSchema(err error) *apiError {
	return &apiError{http.StatusUnprocessableEntity, 42201, "Invalid schema: " + err.Error()}
}

func invalidVersion(v string) *apiError {
	return &apiError{http.StatusUnprocessableEntity, 42202, fmt.Sprintf(
		"The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"", v)}
}

var invalidCompatibility = &apiError{http.StatusUnprocessableEntity, 42203,
	"Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive"}

var invalidMode = &apiError{http.StatusUnprocessableEntity, 42204,
	"Invalid mode. Valid values are READWRITE, READONLY, READONLY_OVERRIDE and IMPORT"}

func readOnly(s string) *apiError {
	return &apiError{http.StatusUnprocessableEntity, 42205, fmt.Sprintf("Subject %s is in read-only mode", s)}
}

func badRequest(err error) *apiError {
	return &apiError{http.StatusBadRequest, 400, "Unrecognized field or malformed request: " + err.Error()}
}

// handler is a registry endpoint: it returns the JSON value to answer with, or an error. A
// string answer of a raw endpoint is written as is.
type handler func(r *http.Request) (any, error)

// rawText marks an answer written as is, not as JSON.
type rawText string

// routes builds the REST API on s. Every endpoint runs under the server's lock; a successful
// POST, PUT or DELETE is saved before it is answered, and answered 500 (50001) if it cannot be.
func (srv *Server) routes() http.Handler {
	mux := http.NewServeMux()
	s := srv.store
	handle := func(pattern string, h handler) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			srv.mu.Lock()
			v, err := h(r)
			if err == nil && r.Method != http.MethodGet {
				if perr := srv.persistLocked(false); perr != nil {
					srv.opts.log.Error("schema registry state not saved; retrying at the next change and at close",
						"file", srv.opts.stateFile, "err", perr)
					// An unsaved ID answered as registered could be given to another schema
					// after a crash. The change stays in memory: a retry is idempotent and gets
					// the same answer once a save succeeds.
					v, err = nil, &apiError{http.StatusInternalServerError, 50001,
						"Error in the backend data store: the registry state could not be saved; retry the request: " + perr.Error()}
				}
			}
			srv.mu.Unlock()
			write(w, v, err)
		})
	}

	handle("GET /{$}", func(*http.Request) (any, error) { return map[string]any{}, nil })
	handle("GET /schemas/types", func(*http.Request) (any, error) { return []string{typeAvro, typeJSON, typeProtobuf}, nil })
	handle("GET /schemas/ids/{id}", s.getByID)
	handle("GET /schemas/ids/{id}/schema", func(r *http.Request) (any, error) {
		b, err := s.byID(r.PathValue("id"))
		if err != nil {
			return nil, err
		}
		return rawText(b.Schema), nil
	})
	handle("GET /schemas/ids/{id}/versions", func(r *http.Request) (any, error) {
		type sv struct {
			Subject string `json:"subject"`
			Version int    `json:"version"`
		}
		return collectByID(s, r, func(name string, v *version) sv { return sv{name, v.num} })
	})
	handle("GET /schemas/ids/{id}/subjects", func(r *http.Request) (any, error) {
		list, err := collectByID(s, r, func(name string, _ *version) string { return name })
		if err != nil {
			return nil, err
		}
		return slices.Compact(list), nil
	})
	handle("GET /subjects", s.listSubjects)
	handle("GET /subjects/{s}/versions", s.listVersions)
	handle("POST /subjects/{s}/versions", s.register)
	handle("GET /subjects/{s}/versions/{v}", func(r *http.Request) (any, error) {
		name, v, err := s.resolveVersion(r, r.PathValue("s"), r.PathValue("v"), flag(r, "deleted"))
		if err != nil {
			return nil, err
		}
		return s.subjectSchema(name, v), nil
	})
	handle("GET /subjects/{s}/versions/{v}/schema", func(r *http.Request) (any, error) {
		_, v, err := s.resolveVersion(r, r.PathValue("s"), r.PathValue("v"), flag(r, "deleted"))
		if err != nil {
			return nil, err
		}
		return rawText(s.schemas[v.id].Schema), nil
	})
	handle("GET /subjects/{s}/versions/{v}/referencedby", func(r *http.Request) (any, error) {
		name, v, err := s.resolveVersion(r, r.PathValue("s"), r.PathValue("v"), true)
		if err != nil {
			return nil, err
		}
		return orEmpty(s.referencedBy(name, v.num, false)), nil
	})
	handle("DELETE /subjects/{s}/versions/{v}", s.deleteVersion)
	handle("POST /subjects/{s}", s.lookup)
	handle("DELETE /subjects/{s}", s.deleteSubject)
	handle("POST /compatibility/subjects/{s}/versions/{v}", s.checkCompatibility)
	handle("POST /compatibility/subjects/{s}/versions", s.checkCompatibility)

	handle("GET /config", func(*http.Request) (any, error) {
		return map[string]string{"compatibilityLevel": string(s.level(""))}, nil
	})
	handle("GET /config/{s}", func(r *http.Request) (any, error) {
		name := r.PathValue("s")
		if sub := s.subjects[name]; (sub == nil || sub.compat == nil) && !flag(r, "defaultToGlobal") {
			return nil, &apiError{http.StatusNotFound, 40408, fmt.Sprintf("Subject '%s' does not have subject-level compatibility configured", name)}
		}
		return map[string]string{"compatibilityLevel": string(s.level(name))}, nil
	})
	handle("PUT /config", func(r *http.Request) (any, error) { return s.putConfig(r, &s.compat) })
	handle("PUT /config/{s}", func(r *http.Request) (any, error) {
		return s.putConfig(r, &s.subject(r.PathValue("s")).compat)
	})
	handle("DELETE /config", func(*http.Request) (any, error) {
		old := s.level("")
		s.compat = nil
		return map[string]string{"compatibilityLevel": string(old)}, nil
	})
	handle("DELETE /config/{s}", func(r *http.Request) (any, error) {
		name := r.PathValue("s")
		sub := s.subjects[name]
		if sub == nil || sub.compat == nil {
			return nil, subjectNotFound(name)
		}
		old := *sub.compat
		sub.compat = nil
		s.drop(name)
		return map[string]string{"compatibilityLevel": old}, nil
	})

	handle("GET /mode", func(*http.Request) (any, error) { return map[string]string{"mode": s.modeOf("")}, nil })
	handle("GET /mode/{s}", func(r *http.Request) (any, error) {
		name := r.PathValue("s")
		if sub := s.subjects[name]; (sub == nil || sub.mode == nil) && !flag(r, "defaultToGlobal") {
			return nil, &apiError{http.StatusNotFound, 40409, fmt.Sprintf("Subject '%s' does not have subject-level mode configured", name)}
		}
		return map[string]string{"mode": s.modeOf(name)}, nil
	})
	handle("PUT /mode", func(r *http.Request) (any, error) { return putMode(r, &s.mode) })
	handle("PUT /mode/{s}", func(r *http.Request) (any, error) { return putMode(r, &s.subject(r.PathValue("s")).mode) })
	handle("DELETE /mode/{s}", func(r *http.Request) (any, error) {
		name := r.PathValue("s")
		sub := s.subjects[name]
		if sub == nil || sub.mode == nil {
			return nil, subjectNotFound(name)
		}
		old := *sub.mode
		sub.mode = nil
		s.drop(name)
		return map[string]string{"mode": old}, nil
	})

	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		write(w, nil, &apiError{http.StatusNotFound, 404, "HTTP 404 Not Found"})
	})
	// Confluent's registry takes paths with a trailing slash too (curl recipes use both).
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") {
			r.URL.Path = strings.TrimSuffix(p, "/")
			r.URL.RawPath = strings.TrimSuffix(r.URL.RawPath, "/")
		}
		mux.ServeHTTP(w, r)
	})
}

func write(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", contentType)
	if err != nil {
		ae, ok := err.(*apiError)
		if !ok {
			ae = &apiError{http.StatusInternalServerError, 50001, err.Error()}
		}
		w.WriteHeader(ae.status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error_code": ae.code, "message": ae.msg})
		return
	}
	if raw, ok := v.(rawText); ok {
		_, _ = io.WriteString(w, string(raw))
		return
	}
	_ = json.NewEncoder(w).Encode(v) // a client that went away has nothing to be told
}

func flag(r *http.Request, name string) bool {
	b, _ := strconv.ParseBool(r.URL.Query().Get(name))
	return b
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// schemaString is the answer of GET /schemas/ids/{id}: schemaType is left out for Avro, as
// Confluent does.
type schemaString struct {
	SchemaType string          `json:"schemaType,omitempty"`
	Schema     string          `json:"schema"`
	References []reference     `json:"references,omitempty"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
	RuleSet    json.RawMessage `json:"ruleSet,omitempty"`
}

func answerBody(b schemaBody) schemaString {
	typ, _ := schemaTypeOf(b.SchemaType)
	if typ == typeAvro {
		typ = ""
	}
	return schemaString{SchemaType: typ, Schema: b.Schema, References: b.References, Metadata: b.Metadata, RuleSet: b.RuleSet}
}

func (s *store) byID(raw string) (schemaBody, error) {
	id, err := strconv.Atoi(raw)
	if err != nil {
		return schemaBody{}, schemaNotFound(raw)
	}
	b, ok := s.schemas[id]
	if !ok {
		return schemaBody{}, schemaNotFound(raw)
	}
	return b, nil
}

// getByID serves GET /schemas/ids/{id}. A ?subject is a hint that selects a context in
// Confluent's registry; the schema is returned by ID whether or not the subject holds it, which
// is what Confluent's deserializers rely on (they send <topic>-value).
func (s *store) getByID(r *http.Request) (any, error) {
	b, err := s.byID(r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return answerBody(b), nil
}

func collectByID[T any](s *store, r *http.Request, f func(string, *version) T) ([]T, error) {
	b, err := s.byID(r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	id := s.ids[identity(b)]
	deleted := flag(r, "deleted")
	out := []T{}
	for _, name := range slices.Sorted(maps.Keys(s.subjects)) {
		for _, v := range s.subjects[name].versions {
			if v.id == id && (deleted || !v.deleted) {
				out = append(out, f(name, v))
			}
		}
	}
	return out, nil
}

func (s *store) listSubjects(r *http.Request) (any, error) {
	deleted, prefix := flag(r, "deleted"), r.URL.Query().Get("subjectPrefix")
	out := []string{}
	for _, name := range slices.Sorted(maps.Keys(s.subjects)) {
		sub := s.subjects[name]
		if !strings.HasPrefix(name, prefix) || len(sub.versions) == 0 {
			continue
		}
		if deleted || len(sub.live()) > 0 {
			out = append(out, name)
		}
	}
	return out, nil
}

func (s *store) listVersions(r *http.Request) (any, error) {
	name := r.PathValue("s")
	deleted, deletedOnly := flag(r, "deleted"), flag(r, "deletedOnly")
	sub := s.subjects[name]
	out := []int{}
	if sub != nil {
		for _, v := range sub.versions {
			if (deletedOnly && v.deleted) || (!deletedOnly && (deleted || !v.deleted)) {
				out = append(out, v.num)
			}
		}
	}
	if len(out) == 0 && (sub == nil || len(sub.versions) == 0 || !deletedOnly) {
		return nil, subjectNotFound(name)
	}
	return out, nil
}

// resolveVersion finds a subject version by number, "latest" or -1 (the latest).
func (s *store) resolveVersion(_ *http.Request, name, raw string, deleted bool) (string, *version, error) {
	num, latest := 0, raw == "latest"
	if !latest {
		n, err := strconv.ParseInt(raw, 10, 32)
		switch {
		case err != nil || n == 0 || n < -1:
			return "", nil, invalidVersion(raw)
		case n == -1:
			latest = true
		default:
			num = int(n)
		}
	}
	sub := s.subjects[name]
	if sub == nil || len(sub.versions) == 0 || (!deleted && len(sub.live()) == 0) {
		return "", nil, subjectNotFound(name)
	}
	if latest {
		vs := sub.live()
		if deleted {
			vs = sub.versions
		}
		return name, vs[len(vs)-1], nil
	}
	v := sub.find(num)
	if v == nil || (v.deleted && !deleted) {
		return "", nil, versionNotFound(num)
	}
	return name, v, nil
}

// subjectSchema is the answer of GET /subjects/{s}/versions/{v} and POST /subjects/{s}.
type subjectSchema struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
	ID      int    `json:"id"`
	schemaString
}

func (s *store) subjectSchema(name string, v *version) subjectSchema {
	return subjectSchema{Subject: name, Version: v.num, ID: v.id, schemaString: answerBody(s.schemas[v.id])}
}

// registerRequest is the body of POST /subjects/{s}/versions, POST /subjects/{s} and the
// compatibility checks.
type registerRequest struct {
	SchemaType string          `json:"schemaType"`
	Schema     string          `json:"schema"`
	References []reference     `json:"references"`
	Metadata   json.RawMessage `json:"metadata"`
	RuleSet    json.RawMessage `json:"ruleSet"`
	ID         int             `json:"id"`
	Version    int             `json:"version"`
}

func (s *store) readBody(r *http.Request) (schemaBody, error) {
	body, _, err := s.readRequest(r)
	return body, err
}

// readRequest is readBody that also returns the request as sent.
func (s *store) readRequest(r *http.Request) (schemaBody, registerRequest, error) {
	var req registerRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 16<<20)).Decode(&req); err != nil {
		return schemaBody{}, req, badRequest(err)
	}
	body, err := req.body()
	return body, req, err
}

// body checks the request and returns the schema it names.
func (req registerRequest) body() (schemaBody, error) {
	typ, err := schemaTypeOf(req.SchemaType)
	if err != nil {
		return schemaBody{}, invalidSchema(err)
	}
	if req.Schema == "" {
		return schemaBody{}, invalidSchema(fmt.Errorf("empty schema"))
	}
	meta := func(m json.RawMessage) json.RawMessage {
		if string(m) == "null" {
			return nil
		}
		return m
	}
	return schemaBody{SchemaType: typ, Schema: req.Schema, References: req.References,
		Metadata: meta(req.Metadata), RuleSet: meta(req.RuleSet)}, nil
}

// register serves POST /subjects/{s}/versions: an equal schema already live in the subject
// answers its ID (idempotent); otherwise the schema must parse and pass the subject's
// compatibility level against its live versions, and gets the ID of an equal schema elsewhere
// or a new one.
func (s *store) register(r *http.Request) (any, error) {
	name := r.PathValue("s")
	body, req, err := s.readRequest(r)
	if err != nil {
		return nil, err
	}
	if req.ID != 0 || req.Version != 0 {
		// Answering another ID or version than the one asked for would be worse than refusing.
		return nil, &apiError{http.StatusUnprocessableEntity, 42205,
			"Overriding the schema id or version is only permitted in IMPORT mode, which this registry does not support"}
	}
	key := identity(body)
	sub := s.subjects[name]
	if sub != nil {
		for _, v := range sub.live() {
			if s.ids[key] == v.id {
				return map[string]int{"id": v.id}, nil
			}
		}
	}
	if m := s.modeOf(name); m == "READONLY" || m == "READONLY_OVERRIDE" {
		return nil, readOnly(name)
	}
	parsed, err := s.parse(body)
	if err != nil {
		return nil, invalidSchema(err)
	}
	level := s.level(name)
	if sub != nil {
		against := sub.live()
		if !strings.HasSuffix(string(level), "_TRANSITIVE") && len(against) > 0 {
			against = against[len(against)-1:]
		}
		msgs, err := s.compatibility(level, body, parsed, against)
		if err != nil {
			return nil, err
		}
		if len(msgs) > 0 {
			return nil, &apiError{http.StatusConflict, 409, fmt.Sprintf(
				"Schema being registered is incompatible with an earlier schema for subject \"%s\", details: [%s]", name, strings.Join(msgs, ", "))}
		}
	}
	id, ok := s.ids[key]
	if !ok {
		id = s.nextID
		s.nextID++
		s.ids[key] = id
		s.schemas[id] = body
	}
	sub = s.subject(name)
	num := 1
	if n := len(sub.versions); n > 0 {
		num = sub.versions[n-1].num + 1
	}
	sub.versions = append(sub.versions, &version{num: num, id: id})
	return map[string]int{"id": id}, nil
}

// lookup serves POST /subjects/{s}: which version of the subject holds this schema.
func (s *store) lookup(r *http.Request) (any, error) {
	name := r.PathValue("s")
	body, err := s.readBody(r)
	if err != nil {
		return nil, err
	}
	sub := s.subjects[name]
	deleted := flag(r, "deleted")
	if sub == nil || len(sub.versions) == 0 || (!deleted && len(sub.live()) == 0) {
		return nil, subjectNotFound(name)
	}
	if _, err := s.parse(body); err != nil {
		return nil, invalidSchema(err)
	}
	id, ok := s.ids[identity(body)]
	if ok {
		for i := len(sub.versions) - 1; i >= 0; i-- {
			if v := sub.versions[i]; v.id == id && (deleted || !v.deleted) {
				return s.subjectSchema(name, v), nil
			}
		}
	}
	return nil, schemaNotFound("")
}

// deleteVersion serves DELETE /subjects/{s}/versions/{v}: a soft delete, or with
// ?permanent=true a hard delete of a version soft-deleted before.
func (s *store) deleteVersion(r *http.Request) (any, error) {
	name := r.PathValue("s")
	permanent := flag(r, "permanent")
	if m := s.modeOf(name); m == "READONLY" || m == "READONLY_OVERRIDE" {
		return nil, readOnly(name)
	}
	// A numbered version may be soft-deleted already (the first step of a permanent delete);
	// "latest" and -1 mean the latest live version, as in Confluent, so they never reach a
	// soft-deleted version behind it.
	n, err := strconv.Atoi(r.PathValue("v"))
	numbered := err == nil && n > 0
	_, v, err := s.resolveVersion(r, name, r.PathValue("v"), numbered)
	if err != nil {
		return nil, err
	}
	if v.deleted && !permanent {
		return nil, &apiError{http.StatusNotFound, 40406, fmt.Sprintf(
			"Subject '%s' Version %d was soft deleted.Set permanent=true to delete permanently", name, v.num)}
	}
	if refs := s.referencedBy(name, v.num, permanent); len(refs) > 0 {
		return nil, &apiError{http.StatusUnprocessableEntity, 42206, fmt.Sprintf(
			"One or more references exist to the schema {subject=%s,version=%d}.", name, v.num)}
	}
	sub := s.subjects[name]
	if !permanent {
		v.deleted = true
		return v.num, nil
	}
	if !v.deleted {
		return nil, &apiError{http.StatusNotFound, 40407, fmt.Sprintf(
			"Subject '%s' Version %d was not deleted first before being permanently deleted", name, v.num)}
	}
	sub.versions = slices.DeleteFunc(sub.versions, func(x *version) bool { return x == v })
	s.forget(v.id)
	s.drop(name)
	return v.num, nil
}

// deleteSubject serves DELETE /subjects/{s}: soft-deletes every version, or with
// ?permanent=true removes a subject soft-deleted before.
func (s *store) deleteSubject(r *http.Request) (any, error) {
	name := r.PathValue("s")
	permanent := flag(r, "permanent")
	if m := s.modeOf(name); m == "READONLY" || m == "READONLY_OVERRIDE" {
		return nil, readOnly(name)
	}
	sub := s.subjects[name]
	if sub == nil || len(sub.versions) == 0 {
		return nil, subjectNotFound(name)
	}
	live := sub.live()
	if !permanent && len(live) == 0 {
		return nil, &apiError{http.StatusNotFound, 40404, fmt.Sprintf(
			"Subject '%s' was soft deleted.Set permanent=true to delete permanently", name)}
	}
	if permanent && len(live) > 0 {
		return nil, &apiError{http.StatusNotFound, 40405, fmt.Sprintf(
			"Subject '%s' was not deleted first before being permanently deleted", name)}
	}
	for _, v := range sub.versions {
		if refs := s.referencedBy(name, v.num, permanent); len(refs) > 0 {
			return nil, &apiError{http.StatusUnprocessableEntity, 42206, fmt.Sprintf(
				"One or more references exist to the schema {subject=%s,version=%d}.", name, v.num)}
		}
	}
	nums := []int{}
	if !permanent {
		for _, v := range live {
			v.deleted = true
			nums = append(nums, v.num)
		}
		return nums, nil
	}
	old := sub.versions
	sub.versions = nil
	for _, v := range old {
		nums = append(nums, v.num)
		s.forget(v.id)
	}
	sub.compat, sub.mode = nil, nil
	s.drop(name)
	return nums, nil
}

// forget removes a schema no subject version uses any more. Its ID is not given out again.
func (s *store) forget(id int) {
	for _, sub := range s.subjects {
		for _, v := range sub.versions {
			if v.id == id {
				return
			}
		}
	}
	delete(s.ids, identity(s.schemas[id]))
	delete(s.schemas, id)
}

// checkCompatibility serves POST /compatibility/subjects/{s}/versions[/{v}]: against one
// version (a number or latest), or without a version against those the subject's level selects.
func (s *store) checkCompatibility(r *http.Request) (any, error) {
	name := r.PathValue("s")
	body, err := s.readBody(r)
	if err != nil {
		return nil, err
	}
	level := s.level(name)
	var against []*version
	switch raw := r.PathValue("v"); {
	case raw == "":
		if sub := s.subjects[name]; sub != nil {
			against = sub.live()
		}
		if !strings.HasSuffix(string(level), "_TRANSITIVE") && len(against) > 0 {
			against = against[len(against)-1:]
		}
	case raw == "latest" || raw == "-1":
		if sub := s.subjects[name]; sub != nil && len(sub.live()) > 0 {
			vs := sub.live()
			against = vs[len(vs)-1:]
		}
	default:
		_, v, err := s.resolveVersion(r, name, raw, false)
		if err != nil {
			return nil, err
		}
		against = []*version{v}
	}
	parsed, err := s.parse(body)
	if err != nil {
		return nil, invalidSchema(err)
	}
	msgs, err := s.compatibility(level, body, parsed, against)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"is_compatible": len(msgs) == 0}
	if flag(r, "verbose") {
		out["messages"] = orEmpty(msgs)
	}
	return out, nil
}

func (s *store) putConfig(r *http.Request, into **string) (any, error) {
	var req struct {
		Compatibility string `json:"compatibility"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		return nil, badRequest(err)
	}
	l, err := avrocompat.ParseLevel(req.Compatibility)
	if err != nil {
		return nil, invalidCompatibility
	}
	v := string(l)
	*into = &v
	return map[string]string{"compatibility": v}, nil
}

func putMode(r *http.Request, into **string) (any, error) {
	var req struct {
		Mode string `json:"mode"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		return nil, badRequest(err)
	}
	m := strings.ToUpper(req.Mode)
	if !slices.Contains(modes, m) {
		return nil, invalidMode
	}
	*into = &m
	return map[string]string{"mode": m}, nil
}

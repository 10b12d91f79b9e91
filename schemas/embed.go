// Package schemas is choreo's event catalog: one Avro schema (.avsc) per event and catalog.yaml,
// which names every event, every service and every chain of events. The files are embedded so
// that every binary carries the exact schemas it was built with.
package schemas

import "embed"

// FS holds catalog.yaml and every .avsc file of this directory.
//
//go:embed catalog.yaml *.avsc
var FS embed.FS

// History holds history/<Event>/v<N>.avsc: every earlier version of every event's schema,
// append-only, which `choreo schema check` keeps the current schemas compatible with.
//
//go:embed history
var History embed.FS

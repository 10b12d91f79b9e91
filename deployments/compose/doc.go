// Package compose holds the checks of docker-compose.yml against the code.
//
// It has no code of its own: its tests load the repository's docker-compose.yml with
// compose-go (no Docker engine needed) and fail when the file drifts from what the services
// read and where they listen. See README.md.
package compose

// Package confluent proves that choreo speaks Confluent's dialect, with Confluent's own client
// code: the schema registry client and Avro serde of github.com/confluentinc/confluent-kafka-go,
// at their default settings, read every event choreo writes, and choreo processes an event they
// wrote. It is a module of its own so that Confluent's client (cgo, librdkafka, many modules)
// stays out of choreo's build; `make test-interop` runs its tests.
package confluent

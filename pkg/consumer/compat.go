package consumer

import "github.com/choreo-dev/choreo/pkg/deadletter"

// Deprecated names of the dead-letter format, now package deadletter's.
const (
	HeaderDLQTopic        = deadletter.HeaderTopic
	HeaderDLQPartition    = deadletter.HeaderPartition
	HeaderDLQOffset       = deadletter.HeaderOffset
	HeaderDLQGroup        = deadletter.HeaderGroup
	HeaderDLQHandler      = deadletter.HeaderHandler
	HeaderDLQReason       = deadletter.HeaderReason
	HeaderDLQClass        = deadletter.HeaderClass
	HeaderDLQError        = deadletter.HeaderError
	HeaderDLQTime         = deadletter.HeaderTime
	HeaderDLQAttempts     = deadletter.HeaderAttempts
	HeaderDLQFirstFailure = deadletter.HeaderFirstFailure
	HeaderDLQLastFailure  = deadletter.HeaderLastFailure
)

// DeadLetterTopicOf is deadletter.Topic.
func DeadLetterTopicOf(group string) string { return deadletter.Topic(group) }

package kafka

import "github.com/twmb/franz-go/pkg/kerr"

var kerrTopicExists = kerr.TopicAlreadyExists

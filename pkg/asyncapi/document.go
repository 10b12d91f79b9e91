package asyncapi

import "go.yaml.in/yaml/v3"

// The part of the AsyncAPI 3.0 document model the generator writes. Field order is the order
// of the YAML output; maps are written with sorted keys.

type document struct {
	AsyncAPI           string               `yaml:"asyncapi"`
	ID                 string               `yaml:"id"`
	Info               info                 `yaml:"info"`
	DefaultContentType string               `yaml:"defaultContentType"`
	Servers            map[string]server    `yaml:"servers"`
	Channels           map[string]channel   `yaml:"channels"`
	Operations         map[string]operation `yaml:"operations"`
	Components         components           `yaml:"components"`
}

type info struct {
	Title       string `yaml:"title"`
	Version     string `yaml:"version"`
	Description string `yaml:"description"`
}

type server struct {
	Host        string         `yaml:"host"`
	Protocol    string         `yaml:"protocol"`
	Description string         `yaml:"description"`
	Bindings    serverBindings `yaml:"bindings"`
}

type serverBindings struct {
	Kafka kafkaServerBinding `yaml:"kafka"`
}

type kafkaServerBinding struct {
	SchemaRegistryURL    string `yaml:"schemaRegistryUrl"`
	SchemaRegistryVendor string `yaml:"schemaRegistryVendor"`
	BindingVersion       string `yaml:"bindingVersion"`
}

type channel struct {
	Address     string          `yaml:"address"`
	Description string          `yaml:"description"`
	Messages    map[string]ref  `yaml:"messages"`
	Bindings    channelBindings `yaml:"bindings"`
}

type channelBindings struct {
	Kafka kafkaChannelBinding `yaml:"kafka"`
}

type kafkaChannelBinding struct {
	Topic          string `yaml:"topic"`
	BindingVersion string `yaml:"bindingVersion"`
}

type operation struct {
	Action      string             `yaml:"action"`
	Channel     ref                `yaml:"channel"`
	Summary     string             `yaml:"summary"`
	Description string             `yaml:"description,omitempty"`
	Messages    []ref              `yaml:"messages"`
	Bindings    *operationBindings `yaml:"bindings,omitempty"`
}

type operationBindings struct {
	Kafka kafkaOperationBinding `yaml:"kafka"`
}

type kafkaOperationBinding struct {
	GroupID        *stringSchema `yaml:"groupId,omitempty"`
	BindingVersion string        `yaml:"bindingVersion"`
}

type stringSchema struct {
	Type        string   `yaml:"type"`
	Description string   `yaml:"description,omitempty"`
	Enum        []string `yaml:"enum,omitempty"`
}

type ref struct {
	Ref string `yaml:"$ref"`
}

type components struct {
	Messages map[string]message `yaml:"messages"`
	Schemas  map[string]any     `yaml:"schemas"`
}

type message struct {
	Name          string            `yaml:"name"`
	Title         string            `yaml:"title"`
	Summary       string            `yaml:"summary"`
	Description   string            `yaml:"description"`
	ContentType   string            `yaml:"contentType"`
	Headers       map[string]any    `yaml:"headers"`
	Payload       multiFormatSchema `yaml:"payload"`
	CorrelationID *correlationID    `yaml:"correlationId,omitempty"`
	Bindings      messageBindings   `yaml:"bindings"`
}

type multiFormatSchema struct {
	SchemaFormat string     `yaml:"schemaFormat"`
	Schema       *yaml.Node `yaml:"schema"`
}

type correlationID struct {
	Description string `yaml:"description"`
	Location    string `yaml:"location"`
}

type messageBindings struct {
	Kafka kafkaMessageBinding `yaml:"kafka"`
}

type kafkaMessageBinding struct {
	Key                     stringSchema `yaml:"key"`
	SchemaIDLocation        string       `yaml:"schemaIdLocation"`
	SchemaIDPayloadEncoding string       `yaml:"schemaIdPayloadEncoding"`
	SchemaLookupStrategy    string       `yaml:"schemaLookupStrategy"`
	BindingVersion          string       `yaml:"bindingVersion"`
}

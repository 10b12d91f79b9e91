package cli_test

import "testing"

func TestUIUsage(t *testing.T) {
	t.Parallel()
	runUsage(t, []usageCase{
		{name: "listed in the commands", args: []string{"help"}, wantCode: 0, wantStderr: []string{"ui", "serve the explorer"}},
		{name: "-h", args: []string{"ui", "-h"}, wantCode: 0, wantStderr: []string{"-addr", "CHOREO_UI_ADDR", "-effects", "-namespace", "-brokers", "-registry", "-schemas"}},
		{name: "an argument", args: []string{"ui", "x"}, wantCode: 2, wantStderr: []string{"got 1"}},
		{name: "bad effects", args: []string{"ui", "-effects", "notification-service"}, wantCode: 2, wantStderr: []string{`-effects "notification-service"`, "service=http://host:port"}},
		{name: "no catalog", args: []string{"ui", "-schemas", "/nonexistent"}, wantCode: 1, wantStderr: []string{"load event catalog"}},
		{
			name: "brokers unreachable", args: []string{"ui", "-brokers", "127.0.0.1:1", "-registry", "http://127.0.0.1:1"}, wantCode: 1,
			wantStderr: []string{"KAFKA_BROKERS 127.0.0.1:1 (-brokers)", "events are shown undecoded"},
		},
	})
}

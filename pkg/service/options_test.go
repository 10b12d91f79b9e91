package service_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"testing"
	"testing/fstest"
	"time"

	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/choreo-dev/choreo/pkg/consumer"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/pkg/kafkatest"
	"github.com/choreo-dev/choreo/pkg/migrate"
	"github.com/choreo-dev/choreo/pkg/service"
)

// TestOpenOptions: Open applies its options in order (the migrations, the declared emits, the
// consumer, the API) and gives a service ready to run; when an option fails, Open returns its
// error and releases what it took, the HTTP port among them.
func TestOpenOptions(t *testing.T) {
	t.Parallel()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	brokers := kafkatest.Brokers(t)
	config := func(t *testing.T, httpAddr string) service.Config {
		cfg := service.DefaultConfig(httpAddr)
		cfg.DataDir, cfg.Brokers, cfg.RegistryURL = t.TempDir(), brokers, reg.URL()
		cfg.Namespace = kafkatest.Namespace(t)
		return cfg
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	noop := func(context.Context, *consumer.UnitOfWork, *event.AccountCreated) error { return nil }
	migs := migrate.Migrations{Component: "options-test", FS: fstest.MapFS{"0001_t.sql": {Data: []byte("CREATE TABLE t (id TEXT PRIMARY KEY);")}}}

	t.Run("every part", func(t *testing.T) {
		t.Parallel()
		var order []string
		s, err := service.Open(ctx, "options-test", config(t, "127.0.0.1:0"), nil,
			service.Migrations(migs),
			service.Setup(func(_ context.Context, s *service.Service) error {
				order = append(order, "setup")
				_, err := s.DB.Exec(`INSERT INTO t (id) VALUES ('x')`) // the migration ran before
				return err
			}),
			service.Emits(new(event.AccountDeleted)),
			service.Consume("options-test", []consumer.Handler{consumer.On("noop", noop)}),
			service.API(func(s *service.Service) http.Handler {
				order = append(order, "api")
				return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, s.Name) })
			}),
		)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		if !slices.Equal(order, []string{"setup", "api"}) {
			t.Errorf("options applied as %v", order)
		}
		d := s.Description()
		if !slices.Equal(d.Emits, []string{"AccountDeleted"}) || d.Group != "options-test" || len(d.Handlers) != 1 || d.Handlers[0].Name != "noop" {
			t.Errorf("description = %+v", d)
		}
		if s.Runner() == nil || s.HTTPAddr() == "" {
			t.Errorf("runner %v, HTTP address %q: the consumer or the API is missing", s.Runner(), s.HTTPAddr())
		}
	})

	t.Run("a failing option", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		boom := errors.New("boom")
		s, err := service.Open(ctx, "options-test", config(t, addr), nil,
			service.API(func(*service.Service) http.Handler { return http.NotFoundHandler() }),
			service.Setup(func(context.Context, *service.Service) error { return boom }),
			service.Setup(func(context.Context, *service.Service) error {
				t.Error("an option after the failing one was applied")
				return nil
			}),
		)
		if !errors.Is(err, boom) {
			if err == nil {
				s.Close()
			}
			t.Fatalf("Open = %v, want the option's error", err)
		}
		ln, err = net.Listen("tcp", addr) // the API's listener is closed again
		if err != nil {
			t.Fatalf("the failed Open kept %s: %v", addr, err)
		}
		ln.Close()
	})
}

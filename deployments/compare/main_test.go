package compare

import (
	"os"
	"testing"

	"github.com/choreo-dev/choreo/pkg/service"
	"github.com/choreo-dev/choreo/services/account/accountsvc"
	"github.com/choreo-dev/choreo/services/notification/notificationsvc"
	"github.com/choreo-dev/choreo/services/user/usersvc"
)

// serviceEnv, set to account, user or notification, makes the test binary that service's
// process: what each service's main does. Without CHOREO_COMPARE_BIN the driver starts its
// services this way, so the suite runs it without linking three binaries first.
const serviceEnv = "CHOREO_COMPARE_SERVICE"

func TestMain(m *testing.M) {
	switch os.Getenv(serviceEnv) {
	case "account":
		os.Exit(service.Main(accountsvc.Name, accountsvc.DefaultHTTPAddr, nil, os.Getenv, os.Stderr, accountsvc.Builder(os.Getenv)))
	case "user":
		os.Exit(service.Main(usersvc.Name, usersvc.DefaultHTTPAddr, nil, os.Getenv, os.Stderr, usersvc.New))
	case "notification":
		os.Exit(service.Main(notificationsvc.Name, notificationsvc.DefaultHTTPAddr, nil, os.Getenv, os.Stderr, notificationsvc.New))
	}
	os.Exit(m.Run())
}

// Command notification-service consumes the users topic and sends the emails users receive.
package main

import (
	"os"

	"github.com/choreo-dev/choreo/pkg/service"
	"github.com/choreo-dev/choreo/services/notification/notificationsvc"
)

func main() {
	os.Exit(service.Main(notificationsvc.Name, notificationsvc.DefaultHTTPAddr, os.Args[1:], os.Getenv, os.Stderr, notificationsvc.New))
}

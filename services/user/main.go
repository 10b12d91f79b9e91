// Command user-service keeps one user record per account: it consumes the accounts topic and
// emits UserCreated and UserDeleted to the users topic.
package main

import (
	"os"

	"github.com/choreo-dev/choreo/pkg/service"
	"github.com/choreo-dev/choreo/services/user/usersvc"
)

func main() {
	os.Exit(service.Main(usersvc.Name, usersvc.DefaultHTTPAddr, os.Args[1:], os.Getenv, os.Stderr, usersvc.New))
}

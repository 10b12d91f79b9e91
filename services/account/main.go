// Command account-service registers and deletes accounts and emits AccountCreated and
// AccountDeleted to the accounts topic.
package main

import (
	"os"

	"github.com/choreo-dev/choreo/pkg/service"
	"github.com/choreo-dev/choreo/services/account/accountsvc"
)

func main() {
	os.Exit(service.Main(accountsvc.Name, accountsvc.DefaultHTTPAddr, os.Args[1:], os.Getenv, os.Stderr, accountsvc.Builder(os.Getenv)))
}

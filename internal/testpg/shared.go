package testpg

import (
	"context"
	"os"
	"testing"

	"github.com/go-logr/logr"

	"github.com/jengu/queue-operator/store"
)

// OpenShared opens the store of the PostgreSQL hack/with-services.sh started (DATABASE_URL), its
// schema up to date, closed when the test ends.
func OpenShared(t testing.TB) *store.Store {
	t.Helper()
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		t.Fatal("DATABASE_URL is not set: run the tests with `make test`")
	}
	if err := store.Migrate(context.Background(), url, logr.Discard()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	db, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

package memstore_test

import (
	"testing"

	"github.com/sgtune/sgtune/services/reporter/internal/app"
	"github.com/sgtune/sgtune/services/reporter/internal/memstore"
	"github.com/sgtune/sgtune/services/reporter/internal/storetest"
)

func newStore(*testing.T) app.FrontStore { return memstore.New() }

func TestStore(t *testing.T) { storetest.Run(t, newStore) }

func TestStoreConcurrentSafe(t *testing.T) { storetest.RunConcurrentSafe(t, newStore) }

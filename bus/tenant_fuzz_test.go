package bus_test

import (
	"errors"
	"testing"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
)

// FuzzIntegrations_ids_in_views names an integration any way at all in
// acme's view and in the application's: acme's view finds acme's
// integrations only, the application's finds the one whose ref was given,
// and a name that finds nothing is ErrNotFound.
func FuzzIntegrations_ids_in_views(f *testing.F) {
	for _, id := range []string{"erp-sync", "globex/erp-sync", "acme/erp-sync", "Acme/erp-sync", "ACME/erp-sync",
		"globex%2Ferp-sync", "../globex/erp-sync", "acme/../globex/erp-sync", "/erp-sync", "erp-sync/",
		"globex//erp-sync", "globex/erp-sync/", "globex\\erp-sync", "globex/ERP-SYNC", "acme/", "/", "", " erp-sync",
		"erp-sync\x00", "globex/erp-sync\n", "gl\u00f6bex/erp-sync", "warehouse", "globex/warehouse"} {
		f.Add(id)
	}
	tb := bustest.New(f)
	all := tb.Integrations()
	acme := all.Tenant("acme")
	for _, m := range []*bus.Integrations{acme, all.Tenant("globex"), all} {
		if _, err := m.Create(ctx, bus.Integration{ID: "erp-sync", Sink: bustest.NewSink()}); err != nil {
			f.Fatal(err)
		}
	}
	if _, err := all.Tenant("globex").Create(ctx, bus.Integration{ID: "warehouse", Sink: bustest.NewSink()}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, id string) {
		in, err := acme.Get(ctx, id)
		switch {
		case err == nil && (in.Tenant != "acme" || in.ID != id):
			t.Fatalf("acme's view found %q for %q", in.Ref(), id)
		case err != nil && !errors.Is(err, bus.ErrNotFound):
			t.Fatalf("acme's view: %q: %v", id, err)
		}
		if _, err := acme.Log(ctx, id); err != nil && !errors.Is(err, bus.ErrNotFound) {
			t.Fatalf("acme's view: log of %q: %v", id, err)
		} else if (err == nil) != (id == "erp-sync") {
			t.Fatalf("acme's view: log of %q: %v", id, err)
		}
		in, err = all.Get(ctx, id)
		switch {
		case err == nil && in.Ref() != id:
			t.Fatalf("the application's view found %q for %q", in.Ref(), id)
		case err != nil && !errors.Is(err, bus.ErrNotFound):
			t.Fatalf("the application's view: %q: %v", id, err)
		}
	})
}

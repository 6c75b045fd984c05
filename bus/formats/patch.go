package formats

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/field"
)

// immutable are the fields a patch may repeat but not change.
var immutable = []string{"id", "tenant", "integration_type", "kind", "starts_at", "ends_at"}

// readOnly are the fields a patch may carry (an object read back) but that
// only the bus sets.
var readOnly = []string{"id", "status", "enabled", "created_at", "updated_at"}

// Patch changes integration id with body, in any shape, as an RFC 7396 JSON
// merge patch: the members it has replace the integration's (objects merge
// member by member, null removes one), the rest stay. Fields that cannot
// change may be repeated unchanged (an object read back); changing one is
// bus.ErrImmutable. "enabled" or "status" starts or stops the integration
// once the rest is saved. Masked secrets sent back keep their stored
// values, as with Update.
func Patch(ctx context.Context, m *bus.Integrations, id string, body []byte) (bus.Integration, Format, error) {
	obj, err := decodeObject(body)
	if err != nil {
		return bus.Integration{}, Sinkbus, err
	}
	f := Detect(obj)
	cur, err := m.Get(ctx, id)
	if err != nil {
		return bus.Integration{}, f, err
	}
	r := reshape(f, obj, false, cur.Type())
	if err := r.problems.Err(); err != nil {
		return bus.Integration{}, f, errors.Join(bus.ErrInvalid, err)
	}
	patch := r.obj
	curJSON, err := json.Marshal(cur)
	if err != nil {
		return bus.Integration{}, f, err
	}
	current, err := decodeObject(curJSON)
	if err != nil {
		return bus.Integration{}, f, err
	}
	if err := checkImmutable(current, patch); err != nil {
		return bus.Integration{}, f, renameErr(err, r.names)
	}
	want, err := wantedStatus(patch)
	if err != nil {
		return bus.Integration{}, f, renameErr(err, r.names)
	}
	for _, k := range readOnly {
		delete(patch, k)
		delete(current, k)
	}
	for _, k := range immutable {
		delete(patch, k) // the same as current's: checkImmutable said so
	}
	in := cur
	if len(patch) > 0 { // else only the status changes: no update
		merged, err := json.Marshal(mergePatch(current, patch))
		if err != nil {
			return bus.Integration{}, f, err
		}
		if in, _, err = Update(ctx, m, id, merged); err != nil {
			return bus.Integration{}, f, renameErr(err, r.names)
		}
	}
	switch {
	case want == bus.Running && in.Status != bus.Running:
		in, err = m.Start(ctx, id)
	case want == bus.Stopped && in.Status != bus.Stopped:
		in, err = m.Stop(ctx, id)
	}
	return in, f, renameErr(err, r.names)
}

// checkImmutable refuses a patch that changes (or removes) a field that
// cannot change after creation.
func checkImmutable(current, patch object) error {
	var changed []error
	for _, k := range immutable {
		v, ok := patch[k]
		if !ok || sameValue(k, current[k], v) {
			continue
		}
		changed = append(changed, field.New(k, "cannot change after creation"))
	}
	if len(changed) == 0 {
		return nil
	}
	return errors.Join(append([]error{bus.ErrImmutable}, changed...)...)
}

// sameValue compares two JSON values of field k; times compare as instants.
func sameValue(k string, a, b any) bool {
	if k == "starts_at" || k == "ends_at" {
		return sameTime(a, b)
	}
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

func sameTime(a, b any) bool {
	parse := func(v any) (time.Time, bool) {
		if v == nil {
			return time.Time{}, true
		}
		s, ok := v.(string)
		if !ok {
			return time.Time{}, false
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		return t, err == nil
	}
	x, ok1 := parse(a)
	y, ok2 := parse(b)
	return ok1 && ok2 && x.Equal(y)
}

// wantedStatus reads "status" or "enabled" from a patch: the status the
// caller asks for, or "" for none.
func wantedStatus(patch object) (bus.Status, error) {
	var want bus.Status
	if v, ok := patch["enabled"]; ok && v != nil {
		b, isBool := v.(bool)
		if !isBool {
			return "", invalid("enabled", "must be a boolean")
		}
		want = bus.Stopped
		if b {
			want = bus.Running
		}
	}
	if v, ok := patch["status"]; ok && v != nil {
		s, _ := v.(string)
		st := bus.Status(s)
		if st != bus.Running && st != bus.Stopped {
			return "", invalid("status", "must be %q or %q", bus.Running, bus.Stopped)
		}
		if want != "" && want != st {
			return "", invalid("status", "contradicts enabled")
		}
		want = st
	}
	return want, nil
}

// mergePatch applies an RFC 7396 JSON merge patch: objects merge key by
// key, null removes a key, anything else replaces.
func mergePatch(target, patch any) any {
	p, ok := patch.(object)
	if !ok {
		return patch
	}
	t, ok := target.(object)
	if !ok {
		t = object{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = mergePatch(t[k], v)
	}
	return t
}

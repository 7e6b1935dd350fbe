package limiter

import (
	"reflect"
	"testing"
)

// TestResultCopyFrom guards copyFrom, which copies a Result field by field:
// a field added to Result (or to Limit) and not to copyFrom fails here.
func TestResultCopyFrom(t *testing.T) {
	var src Result
	n := int64(1)
	var fill func(v reflect.Value)
	fill = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				fill(v.Field(i))
			}
		case reflect.Bool:
			v.SetBool(true)
		case reflect.Int64:
			v.SetInt(n)
			n++
		default:
			t.Fatalf("Result holds a %v; teach this test and copyFrom about it", v.Type())
		}
	}
	fill(reflect.ValueOf(&src).Elem())
	var dst Result
	dst.copyFrom(&src)
	if dst != src {
		t.Fatalf("copyFrom gave %+v; want %+v", dst, src)
	}
}

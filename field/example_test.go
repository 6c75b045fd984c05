package field_test

import (
	"fmt"

	"github.com/sinkbus/sinkbus/field"
)

// A Validate method collects every problem at once, each naming its field.
func ExampleProblems() {
	var p field.Problems
	p.Add("url", "required")
	p.Add("timeout", "must be at most %s", "2m")
	p.Merge("headers", field.New("X-Signature", "is a header the sink sets itself"))
	fmt.Println(p.Err())
	// Output:
	// url: required
	// timeout: must be at most 2m
	// headers.X-Signature: is a header the sink sets itself
}

// Prefix re-roots problems under the field that holds the value.
func ExamplePrefix() {
	err := field.Prefix("configuration", field.New("url", "required"))
	for _, e := range field.Errors(err) {
		fe := e.(*field.Error)
		fmt.Printf("%s | %s\n", fe.Field, fe.Rule)
	}
	// Output:
	// configuration.url | required
}

// DecodeStrict refuses unknown fields and names the field of a type error,
// never quoting the value.
func ExampleDecodeStrict() {
	var c struct {
		URL     string `json:"url"`
		Timeout int    `json:"timeout"`
	}
	fmt.Println(field.DecodeStrict([]byte(`{"url":"https://example.com","secret":"s3cr3t"}`), &c))
	fmt.Println(field.DecodeStrict([]byte(`{"timeout":"s3cr3t"}`), &c))
	// Output:
	// secret: unknown field
	// timeout: must be an integer, not a string
}

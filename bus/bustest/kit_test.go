package bustest_test

import "testing"

func TestCheckout(t *testing.T) { testCheckout(t) }

package store_test

import (
	"fmt"

	"github.com/floodgate-go/floodgate/store"
)

// Keys encode without collisions, whatever bytes the caller's key holds,
// and every key of one caller shares one Redis Cluster hash tag.
func ExampleKey_String() {
	minute := store.Key{Namespace: "api:fixed:1m0s", Caller: "tenant {42}", Window: 29_000_000}
	day := store.Key{Namespace: "api:fixed:24h0m0s", Caller: "tenant {42}", Window: 20_419}
	fmt.Println(minute)
	fmt.Println(day)
	fmt.Println(store.HashTag("tenant {42}"))
	back, _ := store.ParseKey(minute.String())
	fmt.Println(back == minute)
	// Output:
	// api:fixed:1m0s{tenant%20%7B42%7D}:29000000
	// api:fixed:24h0m0s{tenant%20%7B42%7D}:20419
	// {tenant%20%7B42%7D}
	// true
}

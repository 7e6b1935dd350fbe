package main

// floodgateSpecs returns the strategies built on floodgate's stores.
func floodgateSpecs() []StrategySpec { return nil }

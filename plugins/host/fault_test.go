package host_test

func runFaultPlugin(name string) {}

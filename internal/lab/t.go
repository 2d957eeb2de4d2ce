package lab

// T is what a lab needs of whoever drives it: somewhere to report failures
// and log, and a stack of cleanups run last-registered first. *testing.T,
// *testing.B and *testing.F satisfy it, as does any testing.TB, so tests
// pass their t; a program such as the demo passes a runner of its own.
//
// Fatalf must not return to its caller: testing's ends the goroutine with
// runtime.Goexit, and a program's may run the cleanups and exit. Errorf
// marks a failure and returns. Cleanup functions run once the driver is
// done, also after Fatalf; they may call Errorf, Logf and Failed.
type T interface {
	Helper()
	Cleanup(f func())
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Failed() bool
}

// skipper is a T that can skip, as a test can.
type skipper interface {
	Skipf(format string, args ...any)
}

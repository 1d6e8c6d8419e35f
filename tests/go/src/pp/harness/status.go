package harness

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Code is the gRPC code of a call's error. A client-side context expiry counts as the matching
// code, because the Go client returns ctx.Err() when its own deadline fires first.
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if st, ok := status.FromError(err); ok {
		return st.Code()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	}
	return codes.Unknown
}

// ExpectCode returns nil when err carries want, else an error that says what came instead.
func ExpectCode(err error, want codes.Code) error {
	if got := Code(err); got != want {
		return fmt.Errorf("want %v, got %v (%v)", want, got, err)
	}
	return nil
}

// ExpectCodeMessage also requires a non-empty status message, so a user learns what was wrong.
func ExpectCodeMessage(err error, want codes.Code) error {
	if err := ExpectCode(err, want); err != nil {
		return err
	}
	if st, ok := status.FromError(err); !ok || st.Message() == "" {
		return fmt.Errorf("%v without a message", want)
	}
	return nil
}

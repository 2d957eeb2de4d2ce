package main

import (
	"fmt"
	"io"
)

func status(args []string, w io.Writer) error {
	return fmt.Errorf("status: no status endpoint yet")
}

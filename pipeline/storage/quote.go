package storage

import (
	"strconv"
	"unicode/utf8"
)

// QuoteLocation returns location as it is when every character of it is
// printable (strconv.IsPrint), and quoted with %q when it holds a control
// character (a newline, a tab, a carriage return), another non-printable
// one or invalid UTF-8. Messages that start with a location print it so: a
// file named "b\nrun ... succeeded" would otherwise print a forged line of
// its own inside the message.
func QuoteLocation(location string) string {
	if !utf8.ValidString(location) {
		return strconv.Quote(location)
	}
	for _, r := range location {
		if !strconv.IsPrint(r) {
			return strconv.Quote(location)
		}
	}
	return location
}

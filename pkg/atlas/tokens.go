package atlas

import (
	"encoding/json"
	"fmt"
)

// Helpers to read a JSON answer token by token, so that memory holds one
// token at a time, not the answer.

// delim reads the next token, which must be want.
func delim(dec *json.Decoder, want json.Delim, what string) error {
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if t != want {
		return &AnswerError{Reason: fmt.Sprintf("%s is %s, not %s", what, kind(t), kind(want))}
	}
	return nil
}

// object reads an object, handing each key to field, which reads its value.
func object(dec *json.Decoder, what string, field func(key string) error) error {
	if err := delim(dec, '{', what); err != nil {
		return err
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		k, ok := t.(string)
		if !ok {
			return &AnswerError{Reason: fmt.Sprintf("an object key is %s", kind(t))}
		}
		if err := field(k); err != nil {
			return err
		}
	}
	_, err := dec.Token()
	return err
}

// skip reads the next value, whatever it is, and drops it.
func skip(dec *json.Decoder) error {
	depth := 0
	for {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// skipArray reads an array (or null), drops its entries and counts them.
func skipArray(dec *json.Decoder, what string) (int, error) {
	t, err := dec.Token()
	if err != nil || t == nil {
		return 0, err
	}
	if t != json.Delim('[') {
		return 0, &AnswerError{Reason: fmt.Sprintf("%s is %s, not an array", what, kind(t))}
	}
	n := 0
	for ; dec.More(); n++ {
		if err := skip(dec); err != nil {
			return n, err
		}
	}
	_, err = dec.Token()
	return n, err
}

// kind names a token for an error, without quoting what the answer said.
func kind(t json.Token) string {
	switch v := t.(type) {
	case json.Delim:
		switch v {
		case '{', '}':
			return "an object"
		case '[', ']':
			return "an array"
		}
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "unexpected"
}

package atlassim_test

import (
	"net/textproto"

	"golang.org/x/oauth2"
)

// oauth2HTTPClient is the context key x/oauth2 reads its base client from.
var oauth2HTTPClient = oauth2.HTTPClient

type textprotoHeader = textproto.MIMEHeader

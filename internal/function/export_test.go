package function

// WithHeadroom is exposed to the tests.
var WithHeadroom = withHeadroom

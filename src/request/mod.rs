//! One HTTP call: building the OpenAI request, parsing the SSE stream, stamping times.

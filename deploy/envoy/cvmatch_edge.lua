-- Applies what gRPC cannot express on transcoded (REST/JSON) responses.
-- The gateway sends `x-cvmatch-http-status` (202, 402, 413, 200 on a replay, ...) and, on errors,
-- `x-cvmatch-error-body` (the seeds' JSON envelope) as response metadata; this filter turns them into the
-- HTTP status and body, and removes gRPC internals. Native gRPC responses pass through untouched.

function envoy_on_response(response_handle)
  local headers = response_handle:headers()
  local content_type = headers:get("content-type") or ""
  if string.sub(content_type, 1, 16) == "application/grpc" then
    return
  end
  local status = headers:get("x-cvmatch-http-status")
  local body = headers:get("x-cvmatch-error-body")
  -- Headers first: once the body is buffered they are already on their way.
  headers:remove("x-cvmatch-http-status")
  headers:remove("x-cvmatch-error-body")
  headers:remove("grpc-status-details-bin")
  headers:remove("grpc-message")
  headers:remove("grpc-status")
  if status ~= nil then
    headers:replace(":status", status)
  end
  if body ~= nil then
    headers:replace("content-type", "application/json")
    headers:replace("content-length", tostring(string.len(body)))
    response_handle:body(true):setBytes(body)
  end
end

-- Applies what gRPC cannot express on transcoded (REST/JSON) responses.
-- The gateway sends `x-cvmatch-http-status` (202, 402, 413, 200 on a replay, ...) and, on errors,
-- `x-cvmatch-error-body` (the seeds' JSON envelope) as response metadata; this filter turns them into the
-- HTTP status and body, and removes gRPC internals. Native gRPC responses pass through untouched.

-- HTTP allows header names that gRPC metadata does not ([0-9a-z_.-] only): the backend would fail the
-- whole call with INTERNAL ("Illegal header key"). Such headers cannot mean anything to the API: drop them.
function envoy_on_request(request_handle)
  local headers = request_handle:headers()
  local illegal = {}
  for key, _ in pairs(headers) do
    if string.sub(key, 1, 1) ~= ":" and string.find(key, "[^0-9a-z_.%-]") then
      illegal[#illegal + 1] = key
    end
  end
  for _, key in ipairs(illegal) do
    headers:remove(key)
  end
end

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

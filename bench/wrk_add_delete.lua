-- voximplant.sip.add and voximplant.sip.delete in pairs: each added CONFIG_ID is deleted next.
-- wrk runs this per thread; `added` holds lines added and not yet deleted.
local added = {}
local counter = 0

request = function()
  local config_id = table.remove(added)
  if config_id then
    return wrk.format("POST", wrk.path .. "voximplant.sip.delete", {["Content-Type"] = "application/json"},
      '{"CONFIG_ID":' .. config_id .. '}')
  end
  counter = counter + 1
  return wrk.format("POST", wrk.path .. "voximplant.sip.add", {["Content-Type"] = "application/json"},
    '{"TYPE":"office","SERVER":"pbx.example.invalid","LOGIN":"bench' .. counter .. '"}')
end

response = function(status, headers, body)
  local config_id = body:match('"CONFIG_ID":"(%d+)"')
  if config_id then table.insert(added, config_id) end
end

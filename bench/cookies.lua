-- wrk script: every request carries the session cookie of a session picked
-- at random from a list of IDs, so that the requests spread over many
-- distinct sessions (the whole store at 1 million sessions).
--
--   SDB_IDS=ids.txt SDB_COOKIE=sid wrk -s bench/cookies.lua URL
--
-- The same script drives the static file, so that both sides of a ratio
-- pay the same for the Lua request hook in wrk.
--
-- init() must be quick: wrk starts each thread as soon as its init() is
-- done but starts its clock only after the last one, so a slow init (say,
-- splitting a million lines) lets the first thread send uncounted time's
-- worth of requests and inflates requests/s. The file is therefore read
-- in one piece, and IDs (43 characters and a newline each) are cut out of
-- it per request.

local data, n, prefix
local LINE = 44

function init(args)
   local path = os.getenv("SDB_IDS")
   prefix = (os.getenv("SDB_COOKIE") or "sid") .. "="
   if not path or path == "" then
      error("cookies.lua: set SDB_IDS to a file of session IDs")
   end
   local f = assert(io.open(path, "rb"))
   data = f:read("*a")
   f:close()
   n = math.floor(#data / LINE)
   if n == 0 or #data % LINE ~= 0 or data:sub(LINE, LINE) ~= "\n" then
      error("cookies.lua: " .. path .. " is not one 43-character ID a line")
   end
   -- one sequence per thread
   local seed = os.time()
   for c in tostring({}):gmatch("%x") do
      seed = (seed * 16 + tonumber(c, 16)) % 2147483647
   end
   math.randomseed(seed)
end

function request()
   local at = (math.random(n) - 1) * LINE
   return wrk.format(nil, nil,
                     { ["Cookie"] = prefix .. data:sub(at + 1, at + 43) })
end

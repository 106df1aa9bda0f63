-- POST one body file with the bench's headers, and print the figures as one JSON line.
--
-- wrk -t1 -c32 -d5s --timeout 10s -s post.lua URL -- BODY_FILE HOST AUTHORIZATION
--
-- The request is built once per thread in init(), so wrk sends it without calling Lua again; no
-- response() is defined, so wrk does not hand responses to Lua either. Latencies are in
-- microseconds, as wrk keeps them.

function init(args)
   local body_path, host, authorization = args[1], args[2], args[3]
   if not (body_path and host and authorization) then
      error("usage: -- BODY_FILE HOST AUTHORIZATION")
   end
   local file = assert(io.open(body_path, "rb"))
   wrk.body = file:read("*a")
   file:close()
   wrk.method = "POST"
   wrk.headers["Host"] = host
   wrk.headers["Authorization"] = authorization
   wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
   local errors = summary.errors
   -- With no completed request wrk's mean and stdev are NaN, which JSON cannot carry.
   local function finite(x)
      if x ~= x then return 0 end
      return x
   end
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
         .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
         .. '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,'
         .. '"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
      summary.requests, summary.duration, summary.bytes,
      errors.connect, errors.read, errors.write, errors.status, errors.timeout,
      latency.min, finite(latency.mean), finite(latency.stdev), latency.max,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9)
   ))
end

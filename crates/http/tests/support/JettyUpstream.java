// The Jetty upstream of crates/http/tests/boundary.rs: an embedded Jetty 9.4 (Debian's
// libjetty9-java) with one servlet on /*. Usage: java JettyUpstream PORT RECORDS_FILE.
// Every request is appended to RECORDS_FILE as one JSON line: method, getRequestURI (+ query),
// getPathInfo and getServletPath (Jetty's decoded, `;param`-stripped path), the path the servlet
// resolves (getPathInfo, backslashes as slashes, normalised) and every header as Jetty exposes it.
// It answers SECRET-ADMIN when that resolves to /api/admin.

import java.io.FileWriter;
import java.io.IOException;
import java.nio.file.Paths;
import java.util.Collections;
import javax.servlet.http.HttpServlet;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletResponse;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.servlet.ServletContextHandler;
import org.eclipse.jetty.servlet.ServletHolder;

public class JettyUpstream {
    static String records;

    static String quote(String s) {
        if (s == null) return "null";
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20 || c > 0x7e) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }

    public static class Echo extends HttpServlet {
        @Override
        protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
            String pathInfo = req.getPathInfo();
            String resolved = pathInfo == null ? "" : Paths.get(pathInfo.replace('\\', '/')).normalize().toString();
            boolean secret = resolved.equals("/api/admin");
            StringBuilder headers = new StringBuilder("{");
            for (String name : Collections.list(req.getHeaderNames())) {
                if (headers.length() > 1) headers.append(',');
                headers.append(quote(name)).append(":[");
                boolean first = true;
                for (String value : Collections.list(req.getHeaders(name))) {
                    if (!first) headers.append(',');
                    headers.append(quote(value));
                    first = false;
                }
                headers.append(']');
            }
            headers.append('}');
            String query = req.getQueryString();
            String record = "{\"method\":" + quote(req.getMethod())
                + ",\"target\":" + quote(req.getRequestURI() + (query == null ? "" : "?" + query))
                + ",\"path\":" + quote(pathInfo)
                + ",\"servlet_path\":" + quote(req.getServletPath())
                + ",\"resolved\":" + quote(resolved)
                + ",\"query\":" + quote(query == null ? "" : query)
                + ",\"headers\":" + headers
                + ",\"secret\":" + secret + "}";
            synchronized (JettyUpstream.class) {
                try (FileWriter out = new FileWriter(records, true)) {
                    out.write(record + "\n");
                }
            }
            resp.setContentType("application/json");
            resp.getWriter().print(secret ? "SECRET-ADMIN\n" : record);
        }
    }

    public static void main(String[] args) throws Exception {
        records = args[1];
        Server server = new Server(new java.net.InetSocketAddress("127.0.0.1", Integer.parseInt(args[0])));
        ServletContextHandler context = new ServletContextHandler();
        context.setContextPath("/");
        context.addServlet(new ServletHolder(new Echo()), "/*");
        server.setHandler(context);
        server.start();
        server.join();
    }
}

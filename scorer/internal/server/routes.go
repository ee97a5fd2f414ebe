package server

import (
	"fmt"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routes assembles the handler: the chain a request travels, top to bottom.
func (s *server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	// The scorer is called by gateways, never by browsers: the peer address
	// is the only client address worth logging.
	e.IPExtractor = echo.ExtractIPDirect()
	e.HTTPErrorHandler = s.handleError

	e.Use(
		s.logRequests,
		middleware.RecoverWithConfig(middleware.RecoverConfig{
			DisableStackAll:     true,
			DisableErrorHandler: true, // logRequests renders it
			LogErrorFunc: func(_ echo.Context, err error, stack []byte) error {
				return fmt.Errorf("panic: %w\n%s", err, stack)
			},
		}),
		limitBody(MaxBodyBytes),
	)

	e.GET("/healthz", s.health)
	e.GET("/v1/profile", s.showProfile)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{})))
	e.POST("/v1/score", s.score)
	e.POST("/v1/score/batch", s.scoreBatch)
	return e
}

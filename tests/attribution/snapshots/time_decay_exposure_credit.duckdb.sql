SELECT
  'time_decay' AS "model",
  "t14"."conversion_id",
  "t14"."kind",
  "t14"."conv_at" AS "conversion_at",
  "t14"."touchpoint_id",
  "t14"."tp_at" AS "touch_at",
  CASE WHEN "t14"."n" > 0 THEN "t14"."channel" ELSE '(unattributed)' END AS "channel",
  "t14"."campaign",
  "t14"."__weight" AS "weight",
  "t14"."__weight" * "t14"."conv_value" AS "value"
FROM (
  SELECT
    "t13"."conversion_id",
    "t13"."person_id",
    "t13"."conv_at",
    "t13"."kind",
    "t13"."conv_value",
    "t13"."lead_at",
    "t13"."opp_at",
    "t13"."won_at",
    "t13"."touchpoint_id",
    "t13"."tp_at",
    "t13"."channel",
    "t13"."campaign",
    "t13"."pos",
    "t13"."n",
    "t13"."last_at",
    "t13"."lead_pos",
    "t13"."opp_pos",
    "t13"."won_pos",
    CASE
      WHEN "t13"."n" > 0
      THEN EXP(
        CAST(EPOCH(CAST("t13"."last_at" AS TIMESTAMP)) - EPOCH(CAST("t13"."tp_at" AS TIMESTAMP)) AS DOUBLE) * -0.0000026741789373454678
      ) / SUM(
        EXP(
          CAST(EPOCH(CAST("t13"."last_at" AS TIMESTAMP)) - EPOCH(CAST("t13"."tp_at" AS TIMESTAMP)) AS DOUBLE) * -0.0000026741789373454678
        )
      ) OVER (
        PARTITION BY "t13"."conversion_id"
        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
      )
      ELSE 1.0
    END AS "__weight"
  FROM (
    SELECT
      "t12"."conversion_id",
      "t12"."person_id",
      "t12"."conv_at",
      "t12"."kind",
      "t12"."conv_value",
      "t12"."lead_at",
      "t12"."opp_at",
      "t12"."won_at",
      "t12"."touchpoint_id",
      "t12"."tp_at",
      "t12"."channel",
      "t12"."campaign",
      "t12"."pos",
      "t12"."n",
      "t12"."last_at",
      CASE
        WHEN COALESCE(
          (
            "t12"."kind" IS NULL
          ) OR "t12"."kind" IN ('lead', 'opportunity', 'won'),
          FALSE
        )
        AND (
          "t12"."__before_lead" > 0
        )
        THEN "t12"."__before_lead" - 1
        ELSE CAST(NULL AS BIGINT)
      END AS "lead_pos",
      CASE
        WHEN COALESCE((
          "t12"."kind" IS NULL
        ) OR "t12"."kind" IN ('opportunity', 'won'), FALSE)
        AND (
          "t12"."__before_opp" > 0
        )
        THEN "t12"."__before_opp" - 1
        ELSE CAST(NULL AS BIGINT)
      END AS "opp_pos",
      CASE
        WHEN COALESCE((
          "t12"."kind" IS NULL
        ) OR "t12"."kind" IN ('won'), FALSE)
        AND (
          "t12"."__before_won" > 0
        )
        THEN "t12"."__before_won" - 1
        ELSE CAST(NULL AS BIGINT)
      END AS "won_pos"
    FROM (
      SELECT
        "t11"."conversion_id",
        "t11"."person_id",
        "t11"."conv_at",
        "t11"."kind",
        "t11"."conv_value",
        "t11"."lead_at",
        "t11"."opp_at",
        "t11"."won_at",
        "t11"."touchpoint_id",
        "t11"."tp_at",
        "t11"."channel",
        "t11"."campaign",
        ROW_NUMBER() OVER (
          PARTITION BY "t11"."conversion_id"
          ORDER BY "t11"."tp_at" ASC, "t11"."touchpoint_id" ASC
          ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
        ) - 1 AS "pos",
        COUNT("t11"."touchpoint_id") OVER (
          PARTITION BY "t11"."conversion_id"
          ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
        ) AS "n",
        MAX("t11"."tp_at") OVER (
          PARTITION BY "t11"."conversion_id"
          ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
        ) AS "last_at",
        "t11"."lead_pos",
        "t11"."opp_pos",
        "t11"."won_pos",
        SUM(
          CAST(COALESCE(
            "t11"."tp_at" <= CASE
              WHEN COALESCE("t11"."lead_at", "t11"."conv_at") > "t11"."conv_at"
              THEN "t11"."conv_at"
              ELSE COALESCE("t11"."lead_at", "t11"."conv_at")
            END,
            FALSE
          ) AS BIGINT)
        ) OVER (
          PARTITION BY "t11"."conversion_id"
          ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
        ) AS "__before_lead",
        SUM(
          CAST(COALESCE(
            "t11"."tp_at" <= CASE
              WHEN COALESCE("t11"."opp_at", "t11"."conv_at") > "t11"."conv_at"
              THEN "t11"."conv_at"
              ELSE COALESCE("t11"."opp_at", "t11"."conv_at")
            END,
            FALSE
          ) AS BIGINT)
        ) OVER (
          PARTITION BY "t11"."conversion_id"
          ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
        ) AS "__before_opp",
        SUM(
          CAST(COALESCE(
            "t11"."tp_at" <= CASE
              WHEN COALESCE("t11"."won_at", "t11"."conv_at") > "t11"."conv_at"
              THEN "t11"."conv_at"
              ELSE COALESCE("t11"."won_at", "t11"."conv_at")
            END,
            FALSE
          ) AS BIGINT)
        ) OVER (
          PARTITION BY "t11"."conversion_id"
          ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
        ) AS "__before_won"
      FROM (
        SELECT
          "t10".*
          EXCLUDE ("__keep")
        FROM (
          SELECT
            *
          FROM (
            SELECT
              "t8"."conversion_id",
              "t8"."person_id",
              "t8"."conv_at",
              "t8"."kind",
              "t8"."conv_value",
              "t8"."lead_at",
              "t8"."opp_at",
              "t8"."won_at",
              "t8"."touchpoint_id",
              "t8"."tp_at",
              "t8"."channel",
              "t8"."campaign",
              "t8"."pos",
              "t8"."n",
              "t8"."last_at",
              "t8"."lead_pos",
              "t8"."opp_pos",
              "t8"."won_pos",
              (
                LAG("t8"."channel") OVER (
                  PARTITION BY "t8"."conversion_id"
                  ORDER BY "t8"."tp_at" ASC, "t8"."touchpoint_id" ASC
                  ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
                ) IS NULL
              )
              OR (
                LAG("t8"."channel") OVER (
                  PARTITION BY "t8"."conversion_id"
                  ORDER BY "t8"."tp_at" ASC, "t8"."touchpoint_id" ASC
                  ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
                ) <> "t8"."channel"
              ) AS "__keep"
            FROM (
              SELECT
                "t7"."conversion_id",
                "t7"."person_id",
                "t7"."conv_at",
                "t7"."kind",
                "t7"."conv_value",
                "t7"."lead_at",
                "t7"."opp_at",
                "t7"."won_at",
                "t7"."touchpoint_id",
                "t7"."tp_at",
                "t7"."channel",
                "t7"."campaign",
                "t7"."pos",
                "t7"."n",
                "t7"."last_at",
                CASE
                  WHEN COALESCE((
                    "t7"."kind" IS NULL
                  ) OR "t7"."kind" IN ('lead', 'opportunity', 'won'), FALSE)
                  AND (
                    "t7"."__before_lead" > 0
                  )
                  THEN "t7"."__before_lead" - 1
                  ELSE CAST(NULL AS BIGINT)
                END AS "lead_pos",
                CASE
                  WHEN COALESCE((
                    "t7"."kind" IS NULL
                  ) OR "t7"."kind" IN ('opportunity', 'won'), FALSE)
                  AND (
                    "t7"."__before_opp" > 0
                  )
                  THEN "t7"."__before_opp" - 1
                  ELSE CAST(NULL AS BIGINT)
                END AS "opp_pos",
                CASE
                  WHEN COALESCE((
                    "t7"."kind" IS NULL
                  ) OR "t7"."kind" IN ('won'), FALSE)
                  AND (
                    "t7"."__before_won" > 0
                  )
                  THEN "t7"."__before_won" - 1
                  ELSE CAST(NULL AS BIGINT)
                END AS "won_pos"
              FROM (
                SELECT
                  "t6"."conversion_id",
                  "t6"."person_id",
                  "t6"."conv_at",
                  "t6"."kind",
                  "t6"."conv_value",
                  "t6"."lead_at",
                  "t6"."opp_at",
                  "t6"."won_at",
                  "t6"."touchpoint_id",
                  "t6"."tp_at",
                  "t6"."channel",
                  "t6"."campaign",
                  ROW_NUMBER() OVER (
                    PARTITION BY "t6"."conversion_id"
                    ORDER BY "t6"."tp_at" ASC, "t6"."touchpoint_id" ASC
                    ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
                  ) - 1 AS "pos",
                  COUNT("t6"."touchpoint_id") OVER (
                    PARTITION BY "t6"."conversion_id"
                    ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
                  ) AS "n",
                  MAX("t6"."tp_at") OVER (
                    PARTITION BY "t6"."conversion_id"
                    ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
                  ) AS "last_at",
                  SUM(
                    CAST(COALESCE(
                      "t6"."tp_at" <= CASE
                        WHEN COALESCE("t6"."lead_at", "t6"."conv_at") > "t6"."conv_at"
                        THEN "t6"."conv_at"
                        ELSE COALESCE("t6"."lead_at", "t6"."conv_at")
                      END,
                      FALSE
                    ) AS BIGINT)
                  ) OVER (
                    PARTITION BY "t6"."conversion_id"
                    ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
                  ) AS "__before_lead",
                  SUM(
                    CAST(COALESCE(
                      "t6"."tp_at" <= CASE
                        WHEN COALESCE("t6"."opp_at", "t6"."conv_at") > "t6"."conv_at"
                        THEN "t6"."conv_at"
                        ELSE COALESCE("t6"."opp_at", "t6"."conv_at")
                      END,
                      FALSE
                    ) AS BIGINT)
                  ) OVER (
                    PARTITION BY "t6"."conversion_id"
                    ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
                  ) AS "__before_opp",
                  SUM(
                    CAST(COALESCE(
                      "t6"."tp_at" <= CASE
                        WHEN COALESCE("t6"."won_at", "t6"."conv_at") > "t6"."conv_at"
                        THEN "t6"."conv_at"
                        ELSE COALESCE("t6"."won_at", "t6"."conv_at")
                      END,
                      FALSE
                    ) AS BIGINT)
                  ) OVER (
                    PARTITION BY "t6"."conversion_id"
                    ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
                  ) AS "__before_won"
                FROM (
                  SELECT
                    "t4"."conversion_id",
                    "t4"."person_id",
                    "t4"."conv_at",
                    "t4"."kind",
                    "t4"."conv_value",
                    "t4"."lead_at",
                    "t4"."opp_at",
                    "t4"."won_at",
                    "t5"."touchpoint_id",
                    "t5"."tp_at",
                    "t5"."channel",
                    "t5"."campaign"
                  FROM (
                    SELECT
                      "t0"."conversion_id",
                      "t0"."person_id",
                      "t0"."occurred_at" AS "conv_at",
                      "t0"."kind",
                      "t0"."value" AS "conv_value",
                      "t0"."lead_created_at" AS "lead_at",
                      "t0"."opportunity_created_at" AS "opp_at",
                      "t0"."won_at"
                    FROM "conversions" AS "t0"
                  ) AS "t4"
                  LEFT OUTER JOIN (
                    SELECT
                      "t1"."person_id" AS "tp_person",
                      "t1"."occurred_at" AS "tp_at",
                      "t1"."touchpoint_id",
                      "t1"."channel",
                      "t1"."campaign"
                    FROM "touchpoints" AS "t1"
                  ) AS "t5"
                    ON "t4"."person_id" = "t5"."tp_person"
                    AND "t5"."tp_at" <= "t4"."conv_at"
                    AND "t5"."tp_at" >= (
                      CASE
                        WHEN (
                          "t4"."lead_at" IS NOT NULL
                        ) AND (
                          "t4"."lead_at" < "t4"."conv_at"
                        )
                        THEN "t4"."lead_at"
                        ELSE "t4"."conv_at"
                      END - INTERVAL '7776000' SECOND
                    )
                ) AS "t6"
              ) AS "t7"
            ) AS "t8"
          ) AS "t9"
          WHERE
            "t9"."__keep"
        ) AS "t10"
      ) AS "t11"
    ) AS "t12"
  ) AS "t13"
) AS "t14"
